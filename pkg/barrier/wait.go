package barrier

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// firstRetryDelay is the first pause after a failed list or watch; pauses
// double up to the check interval.
const firstRetryDelay = 100 * time.Millisecond

// Option customizes Wait.
type Option func(*waitOptions)

type waitOptions struct {
	restConfig *rest.Config
	progress   func(Progress)
	logger     *slog.Logger
	minTasks   int
}

// DefaultMetadataWatchMinTasks is the Framework size (tasks counted by the
// spec) from which Wait watches metadata only when the controller publishes
// the release; it is v1alpha1.BarrierReleaseMinTasks, the size from which
// podkit's controller publishes it at all. Measured with bench/barrier on one
// 2-core machine: at 100 tasks the whole-object watch costs the control plane
// less CPU and releases sooner (no patch, no extra read). At 1000 tasks, once
// waiters read only the addresses of each event (about 1.8 ms instead of 7),
// the whole-object watch released 2-3x sooner than the metadata watch, whose
// GET at release costs the apiserver a request per waiter. Above that each
// status write costs every waiter of a whole-object watch an event that grows
// with the tasks (about 15 bytes and 1.8 µs each), and a metadata event that
// does not.
const DefaultMetadataWatchMinTasks = v1alpha1.BarrierReleaseMinTasks

// WithMetadataWatch sets the Framework size from which Wait watches metadata
// only when the controller publishes the release: 0 whenever it publishes,
// -1 never. Default DefaultMetadataWatchMinTasks.
func WithMetadataWatch(minTasks int) Option { return func(o *waitOptions) { o.minTasks = minTasks } }

// WithRESTConfig makes Wait use c instead of building a client configuration
// from Config's KubeConfigFilePath and KubeApiServerAddress.
func WithRESTConfig(c *rest.Config) Option { return func(o *waitOptions) { o.restConfig = c } }

// WithProgress makes Wait call fn with the Framework's progress: when it is
// first seen, once per check interval while waiting, and on release. fn runs
// on Wait's goroutine and must not block.
func WithProgress(fn func(Progress)) Option { return func(o *waitOptions) { o.progress = fn } }

// WithLogger makes Wait log reconnections and their causes to l. Default: no
// logs.
func WithLogger(l *slog.Logger) Option { return func(o *waitOptions) { o.logger = l } }

// Wait is WaitRelease returning the released Framework decoded.
func Wait(ctx context.Context, cfg Config, opts ...Option) (*v1alpha1.Framework, error) {
	r, err := WaitRelease(ctx, cfg, opts...)
	if err != nil {
		return nil, err
	}
	return r.Framework()
}

// WaitRelease blocks until every task of the Framework named by cfg, counted against
// each role's taskNumber, has a pod IP in the Framework's status, and returns
// the Framework as seen at that moment: its tasks' addresses, and the
// Framework itself, decoded only if asked (Release.Framework).
//
// It lists the one Framework (field selector metadata.name), then watches it
// from the list's resource version, and releases as soon as the apiserver
// sends the update. The watch is of metadata only when the Framework carries
// v1alpha1.AnnotationBarrierRelease (podkit's controller publishes it) and
// has at least DefaultMetadataWatchMinTasks tasks (see WithMetadataWatch).
// The whole Framework is then read once more each time the annotation
// changes, so the wait costs three requests, and each status write costs the
// apiserver a small event per waiter, whatever the Framework's size.
// Otherwise (smaller Frameworks, FrameworkController's controller) every
// event carries the whole Framework: two requests. The annotation is only a
// hint. The barrier releases on the status it reads, and a "released" that
// the status does not back turns the metadata watch off. Progress reports
// show the last whole Framework read.
//
// Of each Framework read after the list (watch events, the GET at release)
// the barrier decodes only the names, indexes and pod IPs of the tasks (a
// large status is gzipped JSON of about 400 bytes per task, and decoding it
// whole was most of a waiter's CPU); Release.Framework decodes the rest when
// asked.
//
// A broken watch is resumed from the last resource version seen (relisting
// when that is too old), so an apiserver restart loses no update; while the
// apiserver is unreachable, attempts back off up to the check interval, which
// is also the period of progress reports.
//
// Wait gives up at cfg.BarrierCheckTimeoutSec after it starts, or at ctx's
// deadline if that is earlier, with ErrTimeout. It returns ErrInvalidConfig
// for an invalid cfg (after SetDefaults), ErrFrameworkNotFound if the
// Framework does not exist or is deleted (or replaced) while waiting,
// ErrFrameworkCompleted if it completes first, ctx's cause if ctx is canceled,
// and other errors (an unusable kubeconfig, forbidden) as they are.
func WaitRelease(ctx context.Context, cfg Config, opts ...Option) (*Release, error) {
	o := waitOptions{minTasks: DefaultMetadataWatchMinTasks}
	for _, opt := range opts {
		opt(&o)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	rc := o.restConfig
	if rc == nil {
		var err error
		if rc, err = RESTConfig(cfg); err != nil {
			return nil, err
		}
	}
	client, err := newFrameworkClient(rc, cfg.FrameworkNamespace, cfg.FrameworkName)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(cfg.BarrierCheckTimeoutSec) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := &waiter{
		client:   client,
		interval: time.Duration(cfg.BarrierCheckIntervalSec) * time.Second,
		progress: o.progress,
		log:      o.logger.With("namespace", cfg.FrameworkNamespace, "name", cfg.FrameworkName),
		start:    time.Now(),
		minTasks: o.minTasks,
	}
	return w.run(ctx)
}

// waiter is the state of one Wait.
type waiter struct {
	client   *frameworkClient
	interval time.Duration
	progress func(Progress)
	log      *slog.Logger
	start    time.Time

	uid        types.UID // of the Framework first seen; "" before
	published  string    // v1alpha1.AnnotationBarrierRelease as last read; "" when not published
	distrusted bool      // the annotation said released when the status did not
	tasks      int       // tasks counted by the spec, as last read
	minTasks   int       // metadata-only watch from this many tasks (WithMetadataWatch)
	last       *Progress // last progress computed; nil before the first
	lastErr    error     // last list/watch failure, for the timeout message
}

// errRelist asks run to list again (the watch's resource version is gone).
var errRelist = errors.New("relist")

func (w *waiter) run(ctx context.Context) (*Release, error) {
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	rv := ""
	delay := firstRetryDelay
	for {
		if rv == "" {
			f, listRV, err := w.client.list(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil, w.stopped(ctx)
				}
				if err := w.permanent(err); err != nil {
					return nil, err
				}
				if err := w.pause(ctx, &delay, err); err != nil {
					return nil, err
				}
				continue
			}
			if f == nil {
				if w.uid != "" {
					return nil, fmt.Errorf("%w: %s/%s was deleted while waiting", ErrFrameworkNotFound, w.client.namespace, w.client.name)
				}
				return nil, fmt.Errorf("%w: %s/%s does not exist", ErrFrameworkNotFound, w.client.namespace, w.client.name)
			}
			v := f.view
			done, err := w.observe(v)
			if err != nil {
				return nil, err
			}
			if done {
				r := newRelease(v)
				r.raw, r.expanded, r.decoder = f.raw, f.expanded, w.client.decoder
				return r, nil
			}
			w.published = v.published
			if unbacked(w.published) {
				w.distrusted = true
			}
			rv = listRV
		}
		r, nextRV, err := w.watch(ctx, rv, ticker.C)
		switch {
		case r != nil && err == nil:
			return r, nil
		case ctx.Err() != nil:
			return nil, w.stopped(ctx)
		case errors.Is(err, errRelist):
			w.log.Debug("watch resource version expired; listing again", "resourceVersion", rv)
			rv = ""
		case err != nil:
			if perr := w.permanent(err); perr != nil {
				return nil, perr
			}
			if perr := w.pause(ctx, &delay, err); perr != nil {
				return nil, perr
			}
			rv = nextRV
		default: // the watch ended without an error event: resume from nextRV
			w.log.Debug("watch closed; resuming", "resourceVersion", nextRV)
			delay = firstRetryDelay
			rv = nextRV
		}
	}
}

// watch consumes one watch from rv. It returns the release, or the
// resource version to resume from with the error that ended the watch (nil
// when the server closed it or the watch mode must change).
//
// When the Framework carries v1alpha1.AnnotationBarrierRelease (w.published is set), the
// watch is of the Framework's metadata only, and the whole Framework is read
// once each time the annotation changes (and only the barrier's fields of it
// decoded, see decodeView); otherwise every event carries the whole
// Framework.
func (w *waiter) watch(ctx context.Context, rv string, tick <-chan time.Time) (*Release, string, error) {
	metaOnly := w.metaOnly()
	wi, err := w.client.watch(ctx, rv, metaOnly)
	if err != nil {
		if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
			return nil, rv, errRelist
		}
		return nil, rv, err
	}
	defer wi.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, rv, ctx.Err()
		case <-tick:
			w.report()
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return nil, rv, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				prev := rv
				var v *view
				var r *Release
				switch obj := ev.Object.(type) {
				case *rawFramework:
					if err := obj.load(); err != nil {
						// Resume from before this event, so that it is
						// read again.
						return nil, prev, err
					}
					v, rv = obj.view, obj.view.resourceVersion
					r = newRelease(v)
					r.raw, r.expanded, r.decoder = obj.raw, obj.expanded, w.client.decoder
				case *v1alpha1.Framework:
					v, rv = viewOf(obj), obj.ResourceVersion
					r = newRelease(v)
					r.framework = obj
				case *metav1.PartialObjectMetadata:
					rv = obj.ResourceVersion
					if w.uid != "" && obj.UID != w.uid {
						return nil, rv, fmt.Errorf("%w: %s/%s was deleted and created again while waiting", ErrFrameworkNotFound, obj.Namespace, obj.Name)
					}
					if obj.Annotations[v1alpha1.AnnotationBarrierRelease] == w.published {
						continue // a status write that does not change the release state
					}
					raw, err := w.client.getRaw(ctx, rv)
					var expanded []byte
					if err == nil {
						v, expanded, err = decodeView(raw)
					}
					if err != nil {
						// Resume from before this event, so that it is
						// seen (and the Framework read) again.
						return nil, prev, err
					}
					r = newRelease(v)
					r.raw, r.expanded, r.decoder = raw, expanded, w.client.decoder
				default:
					return nil, rv, fmt.Errorf("watch framework: unexpected object %T", ev.Object)
				}
				if done, err := w.observe(v); done || err != nil {
					return r, rv, err
				}
				published := v.published
				if metaOnly && unbacked(published) {
					// A release the status does not back (forged, or
					// the status went back): the hint cannot be trusted,
					// so watch every status from here on.
					w.distrusted = true
					w.published = published
					w.log.Info("release annotation not backed by the status; watching the whole framework", "published", published, "resourceVersion", rv)
					return nil, rv, nil
				}
				if published != w.published {
					w.published = published
					if w.metaOnly() != metaOnly {
						// The controller started or stopped publishing
						// (another controller took over): change mode.
						w.log.Debug("release annotation changed; changing watch mode", "published", published, "resourceVersion", rv)
						return nil, rv, nil
					}
				}
			case watch.Deleted:
				return nil, rv, fmt.Errorf("%w: %s/%s was deleted while waiting", ErrFrameworkNotFound, w.client.namespace, w.client.name)
			case watch.Bookmark:
				if f, ok := ev.Object.(*rawFramework); ok {
					rv = f.resourceVersion()
				} else if m, err := metaAccessor(ev.Object); err == nil {
					rv = m.GetResourceVersion()
				}
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
					return nil, rv, errRelist
				}
				return nil, rv, fmt.Errorf("watch framework %s/%s: %w", w.client.namespace, w.client.name, err)
			}
		}
	}
}

// metaOnly reports whether to watch metadata only: the controller publishes
// the release, the hint has not been caught lying, and the Framework is
// large enough for that to pay.
func (w *waiter) metaOnly() bool {
	return w.published != "" && !w.distrusted && w.minTasks >= 0 && w.tasks >= w.minTasks
}

// unbacked reports whether a release annotation says released; it is
// called on a Framework that observe found not released.
func unbacked(published string) bool {
	return strings.HasSuffix(published, "/"+v1alpha1.BarrierReleased)
}

func metaAccessor(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("bookmark object %T has no metadata", obj)
	}
	return m, nil
}

// observe evaluates one version of the Framework: done when it releases.
func (w *waiter) observe(v *view) (bool, error) {
	if w.uid == "" {
		w.uid = v.uid
	} else if v.uid != w.uid {
		return false, fmt.Errorf("%w: %s/%s was deleted and created again while waiting", ErrFrameworkNotFound, v.namespace, v.name)
	}
	if v.completed {
		return false, fmt.Errorf("%w: %s/%s is %s", ErrFrameworkCompleted, v.namespace, v.name, v.state)
	}
	p := v.progress()
	w.tasks = p.Total
	first := w.last == nil
	w.last = &p
	if first || p.Released() {
		w.report()
	}
	return p.Released(), nil
}

func (w *waiter) report() {
	if w.progress != nil && w.last != nil {
		w.progress(*w.last)
	}
}

// pause logs err and sleeps for *delay (then doubles it up to the interval).
func (w *waiter) pause(ctx context.Context, delay *time.Duration, err error) error {
	w.lastErr = err
	w.log.Info("apiserver unavailable; retrying", "in", *delay, "err", err)
	t := time.NewTimer(*delay)
	defer t.Stop()
	*delay = min(2**delay, w.interval)
	select {
	case <-ctx.Done():
		return w.stopped(ctx)
	case <-t.C:
		return nil
	}
}

// stopped turns the end of ctx into ErrTimeout (deadline) or ctx's cause.
func (w *waiter) stopped(ctx context.Context) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("wait for framework %s/%s: %w", w.client.namespace, w.client.name, context.Cause(ctx))
	}
	elapsed := time.Since(w.start).Round(time.Second)
	switch {
	case w.last != nil:
		return fmt.Errorf("%w after %s: %s", ErrTimeout, elapsed, w.last)
	case w.lastErr != nil:
		return fmt.Errorf("%w after %s: framework %s/%s not seen yet: %w", ErrTimeout, elapsed, w.client.namespace, w.client.name, w.lastErr)
	default:
		return fmt.Errorf("%w after %s: framework %s/%s not seen yet", ErrTimeout, elapsed, w.client.namespace, w.client.name)
	}
}

// permanent returns err if retrying cannot help, nil otherwise.
func (w *waiter) permanent(err error) error {
	if apierrors.IsNotFound(err) && w.uid == "" {
		// The frameworks resource itself is not served (a 404 on the list):
		// the CRD is missing. After the Framework was seen, a 404 is an
		// apiserver that restarted and has not served CRDs yet: retry.
		return fmt.Errorf("%w: %w (is the Framework CRD installed?)", ErrFrameworkNotFound, err)
	}
	if isRetryable(err) {
		return nil
	}
	return err
}

// isRetryable reports whether a failed request may succeed later: server
// errors, throttling, timeouts and connection failures, but not rejections
// (forbidden, unauthorized, bad request) or certificate errors.
func isRetryable(err error) bool {
	for _, final := range []error{ErrFrameworkNotFound, ErrFrameworkCompleted, ErrInvalidConfig, ErrTimeout} {
		if errors.Is(err, final) {
			return false
		}
	}
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) {
		return false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // transport failure: connection refused or reset, EOF
	}
	code := int(status.Status().Code)
	return code >= http.StatusInternalServerError || code == http.StatusTooManyRequests ||
		code == http.StatusRequestTimeout || code == http.StatusNotFound ||
		apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
}
