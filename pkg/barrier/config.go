package barrier

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// Environment variables the barrier reads, as FrameworkController sets them in a
// task's pod (plus KUBECONFIG and KUBE_APISERVER_ADDRESS for out-of-cluster use).
const (
	EnvNameKubeApiServerAddress = "KUBE_APISERVER_ADDRESS" //nolint:revive // seed spelling
	EnvNameKubeConfigFilePath   = "KUBECONFIG"
	EnvNameFrameworkNamespace   = v1alpha1.EnvFrameworkNamespace
	EnvNameFrameworkName        = v1alpha1.EnvFrameworkName
	// EnvNameTaskRoleName and EnvNameTaskIndex name the task the barrier runs
	// for; they fill FB_ROLE, FB_INDEX and RANK in the injector.
	EnvNameTaskRoleName = v1alpha1.EnvTaskRoleName
	EnvNameTaskIndex    = v1alpha1.EnvTaskIndex
)

// Defaults and accepted ranges, as in the original FrameworkBarrier.
const (
	DefaultBarrierCheckIntervalSec = 10
	DefaultBarrierCheckTimeoutSec  = 10 * 60
	MinBarrierCheckIntervalSec     = 5
	MinBarrierCheckTimeoutSec      = 60
	MaxBarrierCheckTimeoutSec      = 20 * 60
)

// Config selects the Framework to wait for and how long to wait. Build it with
// LoadConfig (environment), or fill it yourself and call SetDefaults and Validate.
type Config struct {
	// KubeApiServerAddress overrides the server of the kubeconfig. Empty with an
	// empty KubeConfigFilePath means in-cluster config.
	KubeApiServerAddress string `yaml:"kubeApiServerAddress"` //nolint:revive // seed spelling
	// KubeConfigFilePath is a kubeconfig path (or a KUBECONFIG-style list).
	// Empty means in-cluster config, unless KubeApiServerAddress is set.
	KubeConfigFilePath string `yaml:"kubeConfigFilePath"`

	// FrameworkNamespace and FrameworkName name the Framework to wait for. Both
	// are required.
	FrameworkNamespace string `yaml:"frameworkNamespace"`
	FrameworkName      string `yaml:"frameworkName"`

	// BarrierCheckIntervalSec is the resync safety net: with the watch broken
	// (apiserver down), the barrier GETs the Framework at this interval; with
	// the watch up it re-evaluates and reports progress. Default 10; at least 5.
	BarrierCheckIntervalSec int64 `yaml:"barrierCheckIntervalSec"`
	// BarrierCheckTimeoutSec bounds the whole wait, counted from the start of
	// Wait. Default 600; 60 to 1200.
	BarrierCheckTimeoutSec int64 `yaml:"barrierCheckTimeoutSec"`
}

// LoadConfig reads the configuration in the original's three steps: setting
// (from the environment through lookup, e.g. os.LookupEnv), defaulting and
// validation. Every problem is reported in one error matching ErrInvalidConfig.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	c, err := ConfigFromEnv(lookup)
	if err != nil {
		return c, err
	}
	c.SetDefaults()
	return c, c.Validate()
}

// ConfigFromEnv is the setting step alone: it copies the environment into a
// Config without defaults. A variable that is set but not an integer is an
// error naming it.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	c := Config{
		KubeApiServerAddress: get(EnvNameKubeApiServerAddress),
		KubeConfigFilePath:   get(EnvNameKubeConfigFilePath),
		FrameworkNamespace:   get(EnvNameFrameworkNamespace),
		FrameworkName:        get(EnvNameFrameworkName),
	}
	var problems []string
	for _, f := range []struct {
		name string
		dst  *int64
	}{
		{EnvNameBarrierCheckIntervalSec, &c.BarrierCheckIntervalSec},
		{EnvNameBarrierCheckTimeoutSec, &c.BarrierCheckTimeoutSec},
	} {
		s := get(f.name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q is not an integer number of seconds", f.name, s))
			continue
		}
		*f.dst = n
	}
	if len(problems) > 0 {
		return c, &ConfigError{Problems: problems}
	}
	return c, nil
}

// SetDefaults fills unset (zero) fields: interval 10 s, timeout 600 s.
func (c *Config) SetDefaults() {
	if c.BarrierCheckIntervalSec == 0 {
		c.BarrierCheckIntervalSec = DefaultBarrierCheckIntervalSec
	}
	if c.BarrierCheckTimeoutSec == 0 {
		c.BarrierCheckTimeoutSec = DefaultBarrierCheckTimeoutSec
	}
}

// Validate reports every invalid field in one *ConfigError, naming the
// environment variable that sets it and the accepted values.
func (c Config) Validate() error {
	var problems []string
	if c.FrameworkNamespace == "" {
		problems = append(problems, EnvNameFrameworkNamespace+" is not set; set it to the Framework's namespace")
	}
	if c.FrameworkName == "" {
		problems = append(problems, EnvNameFrameworkName+" is not set; set it to the Framework's name")
	}
	if c.BarrierCheckIntervalSec < MinBarrierCheckIntervalSec {
		problems = append(problems, fmt.Sprintf("%s=%d is too small; use at least %d",
			EnvNameBarrierCheckIntervalSec, c.BarrierCheckIntervalSec, MinBarrierCheckIntervalSec))
	}
	if c.BarrierCheckTimeoutSec < MinBarrierCheckTimeoutSec || c.BarrierCheckTimeoutSec > MaxBarrierCheckTimeoutSec {
		problems = append(problems, fmt.Sprintf("%s=%d is out of range; use %d to %d",
			EnvNameBarrierCheckTimeoutSec, c.BarrierCheckTimeoutSec, MinBarrierCheckTimeoutSec, MaxBarrierCheckTimeoutSec))
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	return nil
}
