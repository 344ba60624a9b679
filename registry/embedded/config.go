package embedded

import (
	"time"

	"github.com/binderbuild/binderbuild/internal/units"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxUploadSize     = 16 << 30
	DefaultUploadTTL         = time.Hour
	DefaultGCInterval        = time.Hour
	DefaultGCGrace           = time.Hour
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

// Config holds the registry's limits and schedules. The zero value of every
// field selects its default; cmd reads them from BINDERBUILD_EMBEDDED_REGISTRY_*.
type Config struct {
	MaxUploadSize     units.Bytes   `split_words:"true" default:"16Gi" desc:"largest blob the embedded registry accepts, as a Kubernetes quantity (16Gi, 500M); a larger upload is refused with 413 and its data deleted"`
	UploadTTL         time.Duration `split_words:"true" default:"1h" desc:"an upload to the embedded registry that gets no request for this long is discarded and its data deleted"`
	GCInterval        time.Duration `split_words:"true" default:"1h" desc:"how often the embedded registry deletes blobs that no manifest references (it also does so right after a manifest is deleted)"`
	GCGrace           time.Duration `split_words:"true" default:"1h" desc:"unreferenced blobs of the embedded registry uploaded, mounted or checked more recently than this are kept: they belong to a push whose manifest has not arrived yet"`
	ReadHeaderTimeout time.Duration `split_words:"true" default:"10s" desc:"the embedded registry closes a connection whose request headers take longer than this"`
	IdleTimeout       time.Duration `split_words:"true" default:"2m" desc:"the embedded registry closes a keep-alive connection idle for this long"`
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	if c.MaxUploadSize <= 0 {
		c.MaxUploadSize = DefaultMaxUploadSize
	}
	set(&c.UploadTTL, DefaultUploadTTL)
	set(&c.GCInterval, DefaultGCInterval)
	set(&c.GCGrace, DefaultGCGrace)
	set(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	set(&c.IdleTimeout, DefaultIdleTimeout)
	return c
}
