package fairqueue

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func req(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

func TestOneObjectOfANamespaceIsNotQueuedBehindAnothersBacklog(t *testing.T) {
	q := NewRateLimiting("", workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	for i := range 1000 {
		q.Add(req("bulk", string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	q.Add(req("bulk", "aa")) // already queued: not queued twice
	q.Add(req("other", "one"))
	q.Add(req("", "node-1"))
	var got []reconcile.Request
	for range 4 {
		item, shutdown := q.Get()
		if shutdown {
			t.Fatal("queue shut down")
		}
		got = append(got, item)
		q.Done(item)
	}
	want := []reconcile.Request{req("bulk", "aa"), req("other", "one"), req("", "node-1"), req("bulk", "ba")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if q.Len() != 998 {
		t.Errorf("Len = %d, want 998 (1000 bulk, de-duplicated, + 2 others - 4 taken)", q.Len())
	}
}

func TestLanesTakeTurnsAndKeepTheirOwnOrder(t *testing.T) {
	q := New(ByNamespace)
	for _, r := range []reconcile.Request{req("a", "1"), req("a", "2"), req("a", "3"), req("b", "1"), req("c", "1"), req("c", "2")} {
		q.Push(r)
	}
	var got []reconcile.Request
	for q.Len() > 0 {
		got = append(got, q.Pop())
		if len(got) == 2 {
			q.Push(req("b", "2")) // b emptied, then comes back at the end of the turn order
		}
	}
	want := []reconcile.Request{req("a", "1"), req("b", "1"), req("c", "1"), req("a", "2"), req("b", "2"), req("c", "2"), req("a", "3")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}
