package barrier

// Constants of the original FrameworkBarrier's contract.
const (
	// ComponentName names the barrier in logs and as a user agent.
	ComponentName = "frameworkbarrier"
	// FrameworkObjectFilePath is where the released Framework object is
	// written, as JSON, relative to the output directory.
	FrameworkObjectFilePath = "./framework.json"
	// InjectorFilePath is where the injector script is written, relative to
	// the output directory.
	InjectorFilePath = "./injector.sh"
	// HostfileFilePath is where the MPI hostfile is written when
	// InjectorOptions.Hostfile is set.
	HostfileFilePath = "./hostfile"

	// EnvNameBarrierCheckIntervalSec sets Config.BarrierCheckIntervalSec.
	EnvNameBarrierCheckIntervalSec = "BARRIER_CHECK_INTERVAL_SEC"
	// EnvNameBarrierCheckTimeoutSec sets Config.BarrierCheckTimeoutSec.
	EnvNameBarrierCheckTimeoutSec = "BARRIER_CHECK_TIMEOUT_SEC"
)
