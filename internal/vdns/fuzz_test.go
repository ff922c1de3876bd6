package vdns

import (
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// FuzzAnswer feeds arbitrary bytes to the query path a UDP or TCP packet
// takes: it must never panic, and whatever it sends back must be a DNS
// response to the same ID that fits the transport.
func FuzzAnswer(f *testing.F) {
	for _, q := range []struct {
		name string
		t    dnsmessage.Type
	}{
		{"web.default.svc.cluster.local.", dnsmessage.TypeA},
		{"_pg._tcp.db.default.svc.cluster.local.", dnsmessage.TypeSRV},
		{"db-0.db.default.svc.cluster.local.", dnsmessage.TypeAAAA},
		{"ext.other.svc.cluster.local.", dnsmessage.TypeA},
		{"example.com.", dnsmessage.TypeA},
	} {
		f.Add(query(f, q.name, q.t), true)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0xc0, 12, 0, 1, 0, 1}, false)
	a, err := newAnswerer("cluster.local", 5, testSource())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q []byte, udp bool) {
		resp := a.Answer(q, udp)
		if resp == nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(resp)
		if err != nil {
			t.Fatalf("response %x does not parse: %v", resp, err)
		}
		if !h.Response || len(q) < 2 || h.ID != uint16(q[0])<<8|uint16(q[1]) {
			t.Fatalf("header %+v: not a response to the query's ID", h)
		}
		if udp && len(resp) > maxEDNSSize || len(resp) > 65535 {
			t.Fatalf("response of %d bytes over udp=%v", len(resp), udp)
		}
	})
}
