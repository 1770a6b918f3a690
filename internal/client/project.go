package client

import (
	"context"

	"github.com/mailroomhq/mailroom/internal/project"
)

// Project is a project as GET /projects shows it: its limits (zero: none)
// and what it holds.
type Project struct {
	project.Config
	// Declared reports whether the config file declares the project.
	Declared     bool `json:"declared"`
	Sources      int  `json:"sources"`
	Destinations int  `json:"destinations"`
	Connections  int  `json:"connections"`
}

// Projects lists the projects the client's token acts in.
func (c *Client) Projects(ctx context.Context) (*Page[Project], error) {
	return list[Project](ctx, c, "/projects", nil)
}
