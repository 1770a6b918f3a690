package main

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
)

// tracingEnabled decides from the standard OpenTelemetry environment
// variables whether serve exports traces: not when OTEL_SDK_DISABLED=true
// or OTEL_TRACES_EXPORTER=none; yes when OTEL_TRACES_EXPORTER=otlp (to the
// default localhost:4318 unless an endpoint is set); otherwise only when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
// Exporters other than otlp, and OTLP over gRPC, are refused rather than
// silently ignored.
func tracingEnabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	on := false
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false, nil
	case "otlp":
		on = true
	case "":
		on = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: mailroom exports traces with otlp only (or none)", exp)
	}
	if !on {
		return false, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(k)); p != "" {
			if p != "http/protobuf" {
				return false, fmt.Errorf("%s=%q: mailroom exports OTLP over http/protobuf only (port 4318, not gRPC's 4317)", k, p)
			}
			break
		}
	}
	return true, nil
}

// newTracerProvider returns the tracer provider of serve and its shutdown
// (which flushes spans not yet exported), or nil and a no-op shutdown when
// tracing is off. The OTLP/HTTP exporter reads its endpoint, headers,
// timeout and TLS settings from the OTEL_EXPORTER_OTLP_* variables, and
// the SDK its sampler from OTEL_TRACES_SAMPLER; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override the service name "mailroom". No global
// provider or propagator is installed.
func newTracerProvider(ctx context.Context, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	on, err := tracingEnabled(getenv)
	if err != nil || !on {
		return nil, noop, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, noop, fmt.Errorf("create OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "mailroom"), attribute.String("service.version", buildinfo.Read().Version)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, noop, fmt.Errorf("build trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
