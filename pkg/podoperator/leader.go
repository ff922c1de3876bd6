package podoperator

import (
	"context"
	"errors"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ErrLeadershipLost is returned by Run when the operator stops renewing its
// Lease while its context is still live. Exit and restart: another replica
// has taken over.
var ErrLeadershipLost = errors.New("pod operator lost leadership")

// runWithLeaderElection campaigns for the Lease and handles events while it
// holds it. On ctx end it drains before releasing the Lease, so a new leader
// never overlaps with handlers still running here.
func (o *Operator) runWithLeaderElection(ctx context.Context) error {
	le := o.opts.LeaderElection
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.LeaseNamespace, Name: le.LeaseName},
		Client:     o.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	// The elector gets its own context, cancelled only once draining is
	// done: cancelling it releases the Lease (ReleaseOnCancel).
	electorCtx, cancelElector := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelElector()

	var (
		mu       sync.Mutex
		stopped  bool
		leading  sync.WaitGroup
		leadErr  error
		lostLead bool
	)
	stopLeading := func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		leading.Wait()
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.opts.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaderCtx context.Context) {
				mu.Lock()
				if stopped {
					mu.Unlock()
					return
				}
				leading.Add(1)
				mu.Unlock()
				defer leading.Done()
				o.log.Info("became leader", "lease", le.LeaseNamespace+"/"+le.LeaseName, "identity", le.Identity)
				stop, cancel := context.WithCancel(leaderCtx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				err := o.lead(stop, nil)
				mu.Lock()
				leadErr = err
				lostLead = ctx.Err() == nil
				mu.Unlock()
			},
			OnStoppedLeading: func() {
				o.log.Info("stopped leading", "lease", le.LeaseNamespace+"/"+le.LeaseName, "identity", le.Identity)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("run pod operator: leader election: %w", err)
	}

	var stopper sync.WaitGroup
	stopper.Go(func() {
		select {
		case <-ctx.Done():
			stopLeading()
			cancelElector()
		case <-electorCtx.Done():
		}
	})
	o.log.Info("waiting for leadership", "lease", le.LeaseNamespace+"/"+le.LeaseName, "identity", le.Identity)
	elector.Run(electorCtx)
	stopLeading()
	cancelElector()
	stopper.Wait()

	mu.Lock()
	defer mu.Unlock()
	if lostLead && ctx.Err() == nil {
		return errors.Join(ErrLeadershipLost, leadErr)
	}
	if ctx.Err() == nil {
		return ErrLeadershipLost
	}
	return leadErr
}
