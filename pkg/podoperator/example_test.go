package podoperator_test

import (
	"context"
	"log"
	"net/http"
	"os/signal"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/pkg/podoperator"
)

// An operator that logs pods as they come and go in one namespace, with
// health and metrics endpoints on :8081.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cfg, err := clientcmd.BuildConfigFromFlags("", clientcmd.RecommendedHomeFile)
	if err != nil {
		log.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)

	op, err := podoperator.New(client, podoperator.Options{
		Namespace:     "worker",
		LabelSelector: "app=worker",
		Workers:       4,
		Handler: podoperator.HandlerFuncs{
			AddFunc: func(ctx context.Context, pod *corev1.Pod) error {
				log.Printf("pod added: %s/%s", pod.Namespace, pod.Name)
				return nil
			},
			DeleteFunc: func(ctx context.Context, pod *corev1.Pod) error {
				log.Printf("pod deleted: %s/%s (last phase %s)", pod.Namespace, pod.Name, pod.Status.Phase)
				return nil
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/healthz", op.HealthHandler())
	mux.Handle("/readyz", op.HealthHandler())
	mux.Handle("/metrics", op.MetricsHandler())
	srv := &http.Server{Addr: ":8081", Handler: mux}
	go func() { _ = srv.ListenAndServe() }()
	defer srv.Close()

	if err := op.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
