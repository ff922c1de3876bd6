package framework

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// Config is the controller's configuration file, in FrameworkController's
// format (its frameworkcontroller.yaml keys), so an FC configuration that
// classifies pod failures keeps working. FC's other keys are accepted and
// ignored (listed in Ignored); unknown keys are refused.
type Config struct {
	// Ignored lists the FrameworkController keys the file set that podkit
	// does not use (podkit has flags for some: --kube-api-qps…).
	Ignored []string `json:"-"`
	// PodFailureSpec classifies failed pods into completion codes. Entries
	// are tried after the predefined ones (exit codes 200, 201 and 210), in
	// order; the first whose pattern matches wins. Nil means
	// DefaultPodFailureSpec; an empty list means none.
	PodFailureSpec []FailureClass `json:"podFailureSpec,omitempty"`
	// FrameworkMinRetryDelaySecForTransientConflictFailed and ...Max bound
	// the random delay before retrying a Transient Conflict failure
	// (default 60 and 900 seconds, FC's defaults). FC applies it to
	// framework retries only: a task retries at once.
	FrameworkMinRetryDelaySecForTransientConflictFailed *int64 `json:"frameworkMinRetryDelaySecForTransientConflictFailed,omitempty"`
	FrameworkMaxRetryDelaySecForTransientConflictFailed *int64 `json:"frameworkMaxRetryDelaySecForTransientConflictFailed,omitempty"`
}

// FailureClass is one completion code and the pod patterns that produce it.
type FailureClass struct {
	// Code must lie outside FC's reserved ranges [-999, 0] and [200, 219].
	Code v1.CompletionCode `json:"code"`
	// Phrase names the code.
	Phrase v1.CompletionPhrase `json:"phrase"`
	// Type's attributes say how fancyRetryPolicy treats it; Name defaults
	// to Failed.
	Type v1.CompletionType `json:"type"`
	// PodPatterns: the class matches a pod when any pattern matches it.
	PodPatterns []PodPattern `json:"podPatterns"`
}

// PodPattern matches a failed pod when every field set matches: regular
// expressions (Go syntax) are searched in the pod's name, status reason and
// status message, and each container pattern must match some container.
type PodPattern struct {
	NameRegex    string             `json:"nameRegex,omitempty"`
	ReasonRegex  string             `json:"reasonRegex,omitempty"`
	MessageRegex string             `json:"messageRegex,omitempty"`
	Containers   []ContainerPattern `json:"containers,omitempty"`
}

// ContainerPattern matches one container status. Reason, message, signal
// and code are those of the container's termination; a pattern that sets
// any of them never matches a container that has not terminated.
type ContainerPattern struct {
	NameRegex    string     `json:"nameRegex,omitempty"`
	ReasonRegex  string     `json:"reasonRegex,omitempty"`
	MessageRegex string     `json:"messageRegex,omitempty"`
	SignalRange  Int32Range `json:"signalRange,omitempty"`
	CodeRange    Int32Range `json:"codeRange,omitempty"`
}

// Int32Range is the closed range [Min, Max]; a missing bound is open, and
// an empty range matches anything.
type Int32Range struct {
	Min *int32 `json:"min,omitempty"`
	Max *int32 `json:"max,omitempty"`
}

func (r Int32Range) set() bool { return r.Min != nil || r.Max != nil }

func (r Int32Range) contains(v int32) bool {
	return (r.Min == nil || *r.Min <= v) && (r.Max == nil || v <= *r.Max)
}

func exactly(v int32) Int32Range { return Int32Range{Min: &v, Max: &v} }

// fcOnlyKeys are FrameworkController configuration keys podkit accepts
// and ignores (pkg/apis/frameworkcontroller/v1/config.go).
var fcOnlyKeys = []string{
	"kubeApiServerAddress", "kubeConfigFilePath", "workerNumber", "kubeClientQps", "kubeClientBurst",
	"largeFrameworkCompression", "frameworkCompletedRetainSec", "crdEstablishedCheckIntervalSec",
	"crdEstablishedCheckTimeoutSec", "objectLocalCacheCreationTimeoutSec", "logObjectSnapshot", "enableKubeBatch",
}

// LoadConfig parses a configuration file (YAML or JSON) and checks it;
// every error names the field and entry at fault.
func LoadConfig(data []byte) (*Config, error) {
	var keys map[string]json.RawMessage
	if err := yaml.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("controller config: %w", err)
	}
	var ignored []string
	for _, k := range fcOnlyKeys {
		if _, ok := keys[k]; ok {
			ignored = append(ignored, k)
			delete(keys, k)
		}
	}
	rest, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("controller config: %w", err)
	}
	c := &Config{}
	if err := yaml.UnmarshalStrict(rest, c); err != nil {
		return nil, fmt.Errorf("controller config: %w", err)
	}
	c.Ignored = ignored
	if _, err := c.classifier(); err != nil {
		return nil, err
	}
	return c, nil
}

// Retry delays for Transient Conflict failures: FrameworkController's
// defaults.
const (
	DefaultMinRetryDelayForTransientConflict = 60 * time.Second
	DefaultMaxRetryDelayForTransientConflict = 900 * time.Second
)

// DefaultPodFailureSpec are the classes FrameworkController's default
// configuration starts with (as FC prints its effective configuration at
// start-up; see microsoft/frameworkcontroller issue #65): the pod-level
// failures a retry is likely to fix.
func DefaultPodFailureSpec() []FailureClass {
	transient := v1.CompletionType{Name: v1.CompletionTypeNameFailed, Attributes: []v1.CompletionTypeAttribute{v1.CompletionTypeAttributeTransient}}
	class := func(code v1.CompletionCode, phrase, reason string) FailureClass {
		return FailureClass{Code: code, Phrase: v1.CompletionPhrase(phrase), Type: transient,
			PodPatterns: []PodPattern{{ReasonRegex: reason, MessageRegex: `(?ms).*`}}}
	}
	return []FailureClass{
		class(-1000, "PodEvicted", `(?i)^Evicted$`),
		class(-1001, "PodNodeLost", `(?i)^NodeLost$`),
		class(-1002, "PodScheduledToInsufficientResourceNode", `(?i)^OutOf\S+$`),
		class(-1003, "PodPreemptedForCriticalPod", `(?i)^Preempting$`),
	}
}

func (c *Config) conflictDelays() (minD, maxD time.Duration, err error) {
	minD, maxD = DefaultMinRetryDelayForTransientConflict, DefaultMaxRetryDelayForTransientConflict
	if c != nil && c.FrameworkMinRetryDelaySecForTransientConflictFailed != nil {
		minD = time.Duration(*c.FrameworkMinRetryDelaySecForTransientConflictFailed) * time.Second
	}
	if c != nil && c.FrameworkMaxRetryDelaySecForTransientConflictFailed != nil {
		maxD = time.Duration(*c.FrameworkMaxRetryDelaySecForTransientConflictFailed) * time.Second
	}
	if minD < 0 || maxD < minD {
		return 0, 0, fmt.Errorf("controller config: frameworkMinRetryDelaySecForTransientConflictFailed (%s) and frameworkMaxRetryDelaySecForTransientConflictFailed (%s) must satisfy 0 <= min <= max", minD, maxD)
	}
	return minD, maxD, nil
}

// classifier is a compiled pod failure spec: the predefined classes, then
// the configured ones.
type classifier struct {
	classes []compiledClass
}

type compiledClass struct {
	code     v1.CompletionCode
	phrase   v1.CompletionPhrase
	typ      v1.CompletionType
	patterns []compiledPod
}

type compiledPod struct {
	name, reason, message *regexp.Regexp
	containers            []compiledContainer
}

type compiledContainer struct {
	name, reason, message *regexp.Regexp
	signal, code          Int32Range
}

// predefinedClasses are the container exit codes of FrameworkController's
// contract: 200 (Transient), 201 (Transient Conflict), 210 (Permanent), from
// any container.
func predefinedClasses() []FailureClass {
	var out []FailureClass
	for _, code := range []v1.CompletionCode{
		v1.CompletionCodeContainerTransientFailed,
		v1.CompletionCodeContainerTransientConflictFailed,
		v1.CompletionCodeContainerPermanentFailed,
	} {
		info := v1.CompletionCodeInfos[code]
		out = append(out, FailureClass{
			Code: code, Phrase: info.Phrase, Type: info.Type,
			PodPatterns: []PodPattern{{Containers: []ContainerPattern{{CodeRange: exactly(int32(code))}}}},
		})
	}
	return out
}

func (c *Config) classifier() (*classifier, error) {
	configured := DefaultPodFailureSpec()
	if c != nil && c.PodFailureSpec != nil {
		configured = c.PodFailureSpec
	}
	out := &classifier{}
	var errs []error
	seen := map[v1.CompletionCode]int{}
	predefined := predefinedClasses()
	for i, fc := range slices.Concat(predefined, configured) {
		field := fmt.Sprintf("podFailureSpec[%d]", i-len(predefined))
		if i >= len(predefined) {
			if _, ok := v1.CompletionCodeInfos[fc.Code]; ok {
				errs = append(errs, fmt.Errorf("%s.code %d: is a predefined code (%s); pick a positive code outside 200, 201 and 210", field, fc.Code, v1.CompletionCodeInfos[fc.Code].Phrase))
				continue
			}
			if (fc.Code >= -999 && fc.Code <= 0) || (fc.Code >= 200 && fc.Code <= 219) {
				errs = append(errs, fmt.Errorf("%s.code %d: lies in a reserved range ([-999, 0] is the controller's, [200, 219] the container contract's); pick another code", field, fc.Code))
				continue
			}
			if j, dup := seen[fc.Code]; dup {
				errs = append(errs, fmt.Errorf("%s.code %d: already used by podFailureSpec[%d]", field, fc.Code, j))
				continue
			}
			seen[fc.Code] = i - len(predefined)
			if fc.Phrase == "" {
				errs = append(errs, fmt.Errorf("%s.phrase: is empty; name the failure, e.g. ContainerOOMKilled", field))
			}
			if len(fc.PodPatterns) == 0 {
				errs = append(errs, fmt.Errorf("%s.podPatterns: is empty; a class without patterns never matches", field))
			}
		}
		typ := fc.Type
		if typ.Name == "" {
			typ.Name = v1.CompletionTypeNameFailed
		}
		if typ.Name != v1.CompletionTypeNameFailed {
			errs = append(errs, fmt.Errorf("%s.type.name %q: a pod failure class can only be %s", field, typ.Name, v1.CompletionTypeNameFailed))
		}
		for _, a := range typ.Attributes {
			switch a {
			case v1.CompletionTypeAttributeTransient, v1.CompletionTypeAttributePermanent, v1.CompletionTypeAttributeConflict:
			default:
				errs = append(errs, fmt.Errorf("%s.type.attributes: unknown attribute %q; use Transient, Permanent or Conflict", field, a))
			}
		}
		if typ.HasAttribute(v1.CompletionTypeAttributeTransient) && typ.HasAttribute(v1.CompletionTypeAttributePermanent) {
			errs = append(errs, fmt.Errorf("%s.type.attributes: Transient and Permanent exclude each other", field))
		}
		if typ.Attributes == nil {
			typ.Attributes = []v1.CompletionTypeAttribute{}
		}
		cc := compiledClass{code: fc.Code, phrase: fc.Phrase, typ: typ}
		for pi, p := range fc.PodPatterns {
			pf := fmt.Sprintf("%s.podPatterns[%d]", field, pi)
			cp := compiledPod{}
			cp.name, errs = compileInto(errs, pf+".nameRegex", p.NameRegex)
			cp.reason, errs = compileInto(errs, pf+".reasonRegex", p.ReasonRegex)
			cp.message, errs = compileInto(errs, pf+".messageRegex", p.MessageRegex)
			for ci, ctr := range p.Containers {
				cf := fmt.Sprintf("%s.containers[%d]", pf, ci)
				cc := compiledContainer{signal: ctr.SignalRange, code: ctr.CodeRange}
				cc.name, errs = compileInto(errs, cf+".nameRegex", ctr.NameRegex)
				cc.reason, errs = compileInto(errs, cf+".reasonRegex", ctr.ReasonRegex)
				cc.message, errs = compileInto(errs, cf+".messageRegex", ctr.MessageRegex)
				for _, r := range []struct {
					f string
					r Int32Range
				}{{cf + ".signalRange", ctr.SignalRange}, {cf + ".codeRange", ctr.CodeRange}} {
					if r.r.Min != nil && r.r.Max != nil && *r.r.Min > *r.r.Max {
						errs = append(errs, fmt.Errorf("%s: min %d is above max %d", r.f, *r.r.Min, *r.r.Max))
					}
				}
				cp.containers = append(cp.containers, cc)
			}
			cc.patterns = append(cc.patterns, cp)
		}
		out.classes = append(out.classes, cc)
	}
	if _, _, err := c.conflictDelays(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("controller config: %w", err)
	}
	return out, nil
}

func compileInto(errs []error, field, expr string) (*regexp.Regexp, []error) {
	if expr == "" {
		return nil, errs
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, append(errs, fmt.Errorf("%s %q: %w", field, expr, err))
	}
	return re, errs
}

// allContainerStatuses are the pod's init and regular container statuses.
func allContainerStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	return slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)
}

// matchedPod is what a pattern matched, for diagnostics.
type matchedPod struct {
	Name       string             `json:"name,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Message    string             `json:"message,omitempty"`
	Containers []matchedContainer `json:"containers,omitempty"`
}

type matchedContainer struct {
	Name    string `json:"name,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Signal  int32  `json:"signal,omitempty"`
	Code    *int32 `json:"code,omitempty"`
}

func find(re *regexp.Regexp, s string) (string, bool) {
	if re == nil {
		return "", true
	}
	loc := re.FindStringIndex(s)
	if loc == nil {
		return "", false
	}
	return s[loc[0]:loc[1]], true
}

func (p *compiledPod) match(pod *corev1.Pod) (*matchedPod, bool) {
	m := &matchedPod{}
	var ok bool
	if m.Name, ok = find(p.name, pod.Name); !ok {
		return nil, false
	}
	if m.Reason, ok = find(p.reason, pod.Status.Reason); !ok {
		return nil, false
	}
	if m.Message, ok = find(p.message, pod.Status.Message); !ok {
		return nil, false
	}
	statuses := allContainerStatuses(pod)
	for i := range p.containers {
		mc, ok := p.containers[i].matchAny(statuses)
		if !ok {
			return nil, false
		}
		if mc != (matchedContainer{}) {
			m.Containers = append(m.Containers, mc)
		}
	}
	return m, true
}

func (c *compiledContainer) matchAny(statuses []corev1.ContainerStatus) (matchedContainer, bool) {
	for i := range statuses {
		if m, ok := c.match(&statuses[i]); ok {
			return m, true
		}
	}
	return matchedContainer{}, false
}

func (c *compiledContainer) match(st *corev1.ContainerStatus) (matchedContainer, bool) {
	m := matchedContainer{}
	var ok bool
	if m.Name, ok = find(c.name, st.Name); !ok {
		return m, false
	}
	term := st.State.Terminated
	needsTerm := c.reason != nil || c.message != nil || c.signal.set() || c.code.set()
	if !needsTerm {
		return m, true
	}
	if term == nil {
		return m, false
	}
	if m.Reason, ok = find(c.reason, term.Reason); !ok {
		return m, false
	}
	if m.Message, ok = find(c.message, term.Message); !ok {
		return m, false
	}
	if c.signal.set() {
		if !c.signal.contains(term.Signal) {
			return m, false
		}
		m.Signal = term.Signal
	}
	if c.code.set() {
		if !c.code.contains(term.ExitCode) {
			return m, false
		}
		code := term.ExitCode
		m.Code = &code
	}
	return m, true
}

// classify returns the completion status of a failed pod: the first class
// whose pattern matches; else the exit code of the container that failed
// last (ContainerUnrecognizedFailed); else PodFailedWithoutFailedContainer.
func (c *classifier) classify(pod *corev1.Pod) *v1.CompletionStatus {
	for _, cls := range c.classes {
		for i := range cls.patterns {
			if m, ok := cls.patterns[i].match(pod); ok {
				return &v1.CompletionStatus{
					Code:        cls.code,
					Phrase:      cls.phrase,
					Type:        v1.CompletionType{Name: cls.typ.Name, Attributes: slices.Clone(cls.typ.Attributes)},
					Diagnostics: "PodPattern matched: " + jsonString(m),
				}
			}
		}
	}
	var last *corev1.ContainerStateTerminated
	for _, st := range allContainerStatuses(pod) {
		if t := st.State.Terminated; t != nil && t.ExitCode != 0 {
			if last == nil || last.FinishedAt.Before(&t.FinishedAt) {
				last = t
			}
		}
	}
	diag := "PodPattern unmatched: " + jsonString(podCompletionStatus(pod))
	if last == nil {
		return v1.NewCompletionStatus(v1.CompletionCodePodFailedWithoutFailedContainer, diag)
	}
	return v1.NewCompletionStatus(v1.CompletionCode(last.ExitCode), diag)
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}
