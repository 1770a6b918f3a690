// Package project holds the projects a mailroom serves and enforces their
// limits. The config file declares projects (`projects:`) with limits on
// the rate of ingest, the number of destinations and the retention of
// history; a project that is not declared (the default one, or one an
// admin created entries in) has no limits of its own. Which rows belong to
// which project is the store's rule ([store.ProjectOf]); this package
// says how much each project may do.
package project

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Config is one project as the config file declares it.
type Config struct {
	// Name is the project's name: 1 to 64 letters, digits, '_', '.' or
	// '-'. "default" sets the limits of the default project.
	Name string `yaml:"name" json:"name"`
	// IngestRate caps the webhooks the project's sources accept, all
	// sources together: "N/s", "N/m" or "N/h", with a burst of one
	// second's worth (at least 1). Empty means unlimited. Requests over
	// the rate are answered 429 with Retry-After and are not stored.
	IngestRate string `yaml:"ingest_rate,omitempty" json:"ingest_rate,omitempty"`
	// MaxDestinations caps the project's destinations. Zero means
	// unlimited.
	MaxDestinations int `yaml:"max_destinations,omitempty" json:"max_destinations,omitempty"`
	// Retention is how long the project's history is kept, instead of the
	// top-level retention. Zero means the top-level retention.
	Retention store.Duration `yaml:"retention,omitempty" json:"retention,omitempty"`
}

// Validate checks c's own fields and returns every problem as a
// [*store.FieldError], joined. minRetention is the shortest retention
// allowed.
func (c *Config) Validate(minRetention time.Duration) error {
	var errs []error
	add := func(field string, err error) { errs = append(errs, &store.FieldError{Field: field, Err: err}) }
	if err := store.CheckProject(c.Name); err != nil {
		add("name", err)
	}
	if _, err := store.ParseRate(c.IngestRate); err != nil {
		add("ingest_rate", err)
	}
	if c.MaxDestinations < 0 {
		add("max_destinations", errors.New("must not be negative"))
	}
	if c.Retention != 0 && c.Retention.D() < minRetention {
		add("retention", fmt.Errorf("%s is shorter than the minimum %s", c.Retention, store.Duration(minRetention)))
	}
	return errors.Join(errs...)
}

// Projects is the set of declared projects with their limiters. It is
// safe for concurrent use.
type Projects struct {
	mu       sync.Mutex
	declared map[string]Config
	limiters map[string]*rate.Limiter
}

// New returns the projects of decl (later entries of one name replace
// earlier ones; the config file refuses duplicates).
func New(decl []Config) *Projects {
	p := &Projects{declared: map[string]Config{}, limiters: map[string]*rate.Limiter{}}
	for _, c := range decl {
		p.declared[c.Name] = c
		if r, err := store.ParseRate(c.IngestRate); err == nil && r > 0 {
			p.limiters[c.Name] = rate.NewLimiter(rate.Limit(r), int(max(1, math.Ceil(r))))
		}
	}
	return p
}

// Declared returns the declared projects by name.
func (p *Projects) Declared() []Config {
	if p == nil {
		return nil
	}
	return slices.SortedFunc(maps.Values(p.declared), func(a, b Config) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
}

// Get returns the declaration of project (the zero Config, with its
// name, when it is not declared) and whether it is declared.
func (p *Projects) Get(project string) (Config, bool) {
	project = store.ProjectOrDefault(project)
	if p == nil {
		return Config{Name: project}, false
	}
	c, ok := p.declared[project]
	if !ok {
		c.Name = project
	}
	return c, ok
}

// AllowIngest takes one request of project's ingest rate at now. When
// the rate is spent it returns false and how long until a request would
// be allowed.
func (p *Projects) AllowIngest(project string, now time.Time) (bool, time.Duration) {
	if p == nil {
		return true, 0
	}
	lim := p.limiters[store.ProjectOrDefault(project)]
	if lim == nil {
		return true, 0
	}
	p.mu.Lock() // a reservation and its cancel stay together
	defer p.mu.Unlock()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

// Retentions returns the projects that set their own retention, with it.
func (p *Projects) Retentions() map[string]time.Duration {
	out := map[string]time.Duration{}
	if p == nil {
		return out
	}
	for name, c := range p.declared {
		if c.Retention > 0 {
			out[name] = c.Retention.D()
		}
	}
	return out
}

// ErrTooManyDestinations is why a destination is refused when its project
// has reached its max_destinations.
var ErrTooManyDestinations = errors.New("max_destinations reached")

// CheckNewDestination says whether project may have one more destination
// besides the have it has: nil, or an error wrapping
// [ErrTooManyDestinations] that names the limit.
func (p *Projects) CheckNewDestination(project string, have int) error {
	c, _ := p.Get(project)
	if c.MaxDestinations > 0 && have >= c.MaxDestinations {
		return fmt.Errorf("%w: project %q has %d destinations and allows %d; delete one, or raise projects[].max_destinations in the config file",
			ErrTooManyDestinations, c.Name, have, c.MaxDestinations)
	}
	return nil
}
