package vdns

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// staticSource is a fixed set of objects: the answering logic's tests need
// data, not API behaviour (that is cluster_test.go's, on a real API server).
type staticSource struct {
	unsynced bool
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
}

func (s *staticSource) HasSynced() bool { return !s.unsynced }

func (s *staticSource) Service(ns, name string) (*corev1.Service, error) {
	for _, svc := range s.services {
		if svc.Namespace == ns && svc.Name == name {
			return svc, nil
		}
	}
	return nil, nil
}

func (s *staticSource) HasServices(ns string) (bool, error) {
	return slices.ContainsFunc(s.services, func(svc *corev1.Service) bool { return svc.Namespace == ns }), nil
}

func (s *staticSource) EndpointSlices(ns, svc string) ([]*discoveryv1.EndpointSlice, error) {
	var out []*discoveryv1.EndpointSlice
	for _, es := range s.slices {
		if es.Namespace == ns && es.Labels[discoveryv1.LabelServiceName] == svc {
			out = append(out, es)
		}
	}
	return out, nil
}

func testSource() *staticSource {
	return &staticSource{
		services: []*corev1.Service{
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
				Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10", "fd00::a"},
					Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 9090}}},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
				Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "empty"},
				Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "ext"},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.com"},
			},
		},
		slices: []*discoveryv1.EndpointSlice{
			{
				ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints: []discoveryv1.Endpoint{
					{Addresses: []string{"10.244.0.7"}, Hostname: ptr.To("db-0"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
					{Addresses: []string{"10.244.0.8"}}, // no condition: ready
					{Addresses: []string{"10.244.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
				},
				Ports: []discoveryv1.EndpointPort{{Name: ptr.To("pg"), Port: ptr.To[int32](15432), Protocol: ptr.To(corev1.ProtocolTCP)}},
			},
			{
				ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "empty-1", Labels: map[string]string{discoveryv1.LabelServiceName: "empty"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}},
			},
		},
	}
}

func query(t testing.TB, name string, qtype dnsmessage.Type) []byte {
	t.Helper()
	b, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 4242, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: qtype, Class: dnsmessage.ClassINET}},
	}).Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// result is a response reduced to what the tests compare.
type result struct {
	RCode   dnsmessage.RCode
	AA, TC  bool
	Answers []string
	Extra   []string
	SOA     bool
}

func parse(t testing.TB, resp []byte) result {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("unpack response: %v", err)
	}
	r := result{RCode: m.Header.RCode, AA: m.Header.Authoritative, TC: m.Header.Truncated}
	for _, rr := range m.Answers {
		r.Answers = append(r.Answers, rrString(rr))
	}
	for _, rr := range m.Additionals {
		if rr.Header.Type != dnsmessage.TypeOPT {
			r.Extra = append(r.Extra, rrString(rr))
		}
	}
	sort.Strings(r.Answers)
	sort.Strings(r.Extra)
	r.SOA = len(m.Authorities) == 1 && m.Authorities[0].Header.Type == dnsmessage.TypeSOA
	return r
}

func rrString(rr dnsmessage.Resource) string {
	name := rr.Header.Name.String()
	switch b := rr.Body.(type) {
	case *dnsmessage.AResource:
		return name + " A " + netip.AddrFrom4(b.A).String()
	case *dnsmessage.AAAAResource:
		return name + " AAAA " + netip.AddrFrom16(b.AAAA).String()
	case *dnsmessage.CNAMEResource:
		return name + " CNAME " + b.CNAME.String()
	case *dnsmessage.SRVResource:
		return name + " SRV " + strconv.Itoa(int(b.Port)) + " " + b.Target.String()
	case *dnsmessage.TXTResource:
		return name + " TXT " + strings.Join(b.TXT, ",")
	case *dnsmessage.SOAResource:
		return name + " SOA"
	}
	return name + " " + rr.Header.Type.String()
}

// Each expectation names its source: the Kubernetes DNS schema
// (kubernetes/dns docs/specification.md, "spec §"), CoreDNS's kubernetes
// plugin (plugin/kubernetes README and behaviour), or the DNS RFCs.
func TestAnswerFollowsTheKubernetesDNSSchema(t *testing.T) {
	a, err := newAnswerer("cluster.local", 5, testSource())
	if err != nil {
		t.Fatal(err)
	}
	nx := result{RCode: dnsmessage.RCodeNameError, AA: true, SOA: true}
	noData := result{RCode: dnsmessage.RCodeSuccess, AA: true, SOA: true}
	ok := func(answers ...string) result { return result{AA: true, Answers: answers} }
	for _, tc := range []struct {
		name  string
		qname string
		qtype dnsmessage.Type
		want  result
	}{
		// spec §2.3.1: a Service with a cluster IP has an A record.
		{"service A", "web.default.svc.cluster.local.", dnsmessage.TypeA, ok("web.default.svc.cluster.local. A 10.96.0.10")},
		// All comparisons are case-insensitive (spec §2.1); the answer
		// keeps the question's spelling.
		{"case-insensitive", "WEB.Default.SVC.cluster.LOCAL.", dnsmessage.TypeA, ok("WEB.Default.SVC.cluster.LOCAL. A 10.96.0.10")},
		// Dual-stack: the IPv6 cluster IP as AAAA (CoreDNS).
		{"service AAAA", "web.default.svc.cluster.local.", dnsmessage.TypeAAAA, ok("web.default.svc.cluster.local. AAAA fd00::a")},
		// A name that exists with no record of the type: NODATA with the
		// SOA (RFC 2308), never NXDOMAIN.
		{"service TXT is NODATA", "web.default.svc.cluster.local.", dnsmessage.TypeTXT, noData},
		// spec §2.3.2: SRV for each named port, to the Service's name;
		// its address in the additional section.
		{"service SRV", "_http._tcp.web.default.svc.cluster.local.", dnsmessage.TypeSRV, result{AA: true,
			Answers: []string{"_http._tcp.web.default.svc.cluster.local. SRV 80 web.default.svc.cluster.local."},
			Extra:   []string{"web.default.svc.cluster.local. A 10.96.0.10", "web.default.svc.cluster.local. AAAA fd00::a"}}},
		{"service SRV udp", "_dns._udp.web.default.svc.cluster.local.", dnsmessage.TypeSRV, result{AA: true,
			Answers: []string{"_dns._udp.web.default.svc.cluster.local. SRV 53 web.default.svc.cluster.local."},
			Extra:   []string{"web.default.svc.cluster.local. A 10.96.0.10", "web.default.svc.cluster.local. AAAA fd00::a"}}},
		// The port's protocol is part of the name.
		{"service SRV wrong protocol", "_http._udp.web.default.svc.cluster.local.", dnsmessage.TypeSRV, nx},
		// spec §2.4.1: a headless Service has an A record per ready
		// endpoint; not-ready ones are left out.
		{"headless A", "db.default.svc.cluster.local.", dnsmessage.TypeA, ok(
			"db.default.svc.cluster.local. A 10.244.0.7", "db.default.svc.cluster.local. A 10.244.0.8")},
		// spec §2.4.1: and one per endpoint hostname.
		{"headless hostname", "db-0.db.default.svc.cluster.local.", dnsmessage.TypeA, ok("db-0.db.default.svc.cluster.local. A 10.244.0.7")},
		// CoreDNS: an endpoint without a hostname is named by its dashed IP.
		{"headless dashed IP", "10-244-0-8.db.default.svc.cluster.local.", dnsmessage.TypeA, ok("10-244-0-8.db.default.svc.cluster.local. A 10.244.0.8")},
		{"headless not-ready hostname", "10-244-0-9.db.default.svc.cluster.local.", dnsmessage.TypeA, nx},
		// spec §2.4.2: SRV per ready endpoint and named port, to the
		// endpoint's name; CoreDNS gives the endpoint's port number.
		{"headless SRV", "_pg._tcp.db.default.svc.cluster.local.", dnsmessage.TypeSRV, result{AA: true,
			Answers: []string{
				"_pg._tcp.db.default.svc.cluster.local. SRV 15432 10-244-0-8.db.default.svc.cluster.local.",
				"_pg._tcp.db.default.svc.cluster.local. SRV 15432 db-0.db.default.svc.cluster.local.",
			},
			Extra: []string{"10-244-0-8.db.default.svc.cluster.local. A 10.244.0.8", "db-0.db.default.svc.cluster.local. A 10.244.0.7"}}},
		// spec §2.4.1: no ready endpoints, NXDOMAIN.
		{"headless without ready endpoints", "empty.default.svc.cluster.local.", dnsmessage.TypeA, nx},
		// spec §2.5: ExternalName is a CNAME, not chased.
		{"external name", "ext.other.svc.cluster.local.", dnsmessage.TypeA, ok("ext.other.svc.cluster.local. CNAME www.example.com.")},
		// spec §2.2.
		{"schema version", "dns-version.cluster.local.", dnsmessage.TypeTXT, ok("dns-version.cluster.local. TXT " + SchemaVersion)},
		// Unknown names in the zone: NXDOMAIN (CoreDNS); the search list
		// expansions a pod tries first (web.default.svc.cluster.local.
		// default.svc.cluster.local) land here.
		{"unknown service", "nope.default.svc.cluster.local.", dnsmessage.TypeA, nx},
		{"unknown namespace", "web.nope.svc.cluster.local.", dnsmessage.TypeA, nx},
		{"search expansion", "web.default.svc.cluster.local.default.svc.cluster.local.", dnsmessage.TypeA, nx},
		{"short name", "web.cluster.local.", dnsmessage.TypeA, nx},
		// CoreDNS's default "pods disabled": pod A records are NXDOMAIN.
		{"pod record", "10-244-0-7.default.pod.cluster.local.", dnsmessage.TypeA, nx},
		// Empty non-terminals exist (RFC 8020): NODATA.
		{"namespace with services", "default.svc.cluster.local.", dnsmessage.TypeA, noData},
		{"namespace without services", "empty-ns.svc.cluster.local.", dnsmessage.TypeA, nx},
		{"svc label", "svc.cluster.local.", dnsmessage.TypeA, noData},
		{"zone apex SOA", "cluster.local.", dnsmessage.TypeSOA, ok("cluster.local. SOA")},
		// Outside the zone: REFUSED (no recursion; the server forwards
		// only with an Upstream, TestServerForwardsNamesOutsideTheZoneToItsUpstream).
		{"outside the zone", "example.com.", dnsmessage.TypeA, result{RCode: dnsmessage.RCodeRefused}},
		{"zone as a label", "cluster.local.evil.com.", dnsmessage.TypeA, result{RCode: dnsmessage.RCodeRefused}},
		{"reverse zone", "10.0.96.10.in-addr.arpa.", dnsmessage.TypePTR, result{RCode: dnsmessage.RCodeRefused}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := a.Answer(query(t, tc.qname, tc.qtype), false)
			if resp == nil {
				t.Fatal("no response")
			}
			if diff := cmp.Diff(tc.want, parse(t, resp)); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", tc.qname, tc.qtype, diff)
			}
		})
	}
}

func TestAnswerIsServerFailureUntilTheSourceHasSynced(t *testing.T) {
	src := testSource()
	src.unsynced = true
	a, err := newAnswerer("cluster.local", 5, src)
	if err != nil {
		t.Fatal(err)
	}
	// An empty cache would say NXDOMAIN for a Service that exists, and
	// resolvers cache negative answers: SERVFAIL instead.
	got := parse(t, a.Answer(query(t, "web.default.svc.cluster.local.", dnsmessage.TypeA), false))
	if got.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("rcode %v before sync, want SERVFAIL", got.RCode)
	}
}

func TestAnswerRejectsMalformedQueries(t *testing.T) {
	a, err := newAnswerer("cluster.local", 5, testSource())
	if err != nil {
		t.Fatal(err)
	}
	good := query(t, "web.default.svc.cluster.local.", dnsmessage.TypeA)
	twoQuestions, err := (&dnsmessage.Message{
		Header: dnsmessage.Header{ID: 7},
		Questions: []dnsmessage.Question{
			{Name: dnsmessage.MustNewName("a.cluster.local."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
			{Name: dnsmessage.MustNewName("b.cluster.local."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
		},
	}).Pack()
	if err != nil {
		t.Fatal(err)
	}
	response := slices.Clone(good)
	response[2] |= 0x80 // QR: a response
	notify := slices.Clone(good)
	notify[2] |= 4 << 3 // opcode NOTIFY
	// A label pointer to itself (RFC 1035 §4.1.4 compression loop).
	loop := append(slices.Clone(good[:12]), 0xc0, 12, 0, 1, 0, 1)
	for _, tc := range []struct {
		name  string
		query []byte
		want  *dnsmessage.RCode // nil: no response at all
	}{
		{"empty", nil, nil},
		{"short header", good[:11], nil},
		{"a response", response, nil},
		{"truncated question", good[:len(good)-3], ptr.To(dnsmessage.RCodeFormatError)},
		{"no question", good[:12], ptr.To(dnsmessage.RCodeFormatError)},
		{"two questions", twoQuestions, ptr.To(dnsmessage.RCodeFormatError)},
		{"compression loop", loop, ptr.To(dnsmessage.RCodeFormatError)},
		{"trailing records missing", append(slices.Clone(good[:11]), 1), ptr.To(dnsmessage.RCodeFormatError)},
		{"other opcode", notify, ptr.To(dnsmessage.RCodeNotImplemented)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := a.Answer(tc.query, true)
			if tc.want == nil {
				if resp != nil {
					t.Fatalf("answered %x, want no response", resp)
				}
				return
			}
			if resp == nil {
				t.Fatalf("no response, want %v", *tc.want)
			}
			var p dnsmessage.Parser
			h, err := p.Start(resp)
			if err != nil {
				t.Fatalf("unparsable response: %v", err)
			}
			if h.RCode != *tc.want || h.ID != 4242 && h.ID != 7 {
				t.Fatalf("rcode %v id %d, want %v and the query's id", h.RCode, h.ID, *tc.want)
			}
		})
	}
}

func TestAnswerTruncatesWhatDoesNotFitUDP(t *testing.T) {
	src := &staticSource{services: []*corev1.Service{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "big"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone},
	}}}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "big-1", Labels: map[string]string{discoveryv1.LabelServiceName: "big"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i := range 100 {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}).String()}})
	}
	src.slices = append(src.slices, es)
	a, err := newAnswerer("cluster.local", 5, src)
	if err != nil {
		t.Fatal(err)
	}
	q := query(t, "big.default.svc.cluster.local.", dnsmessage.TypeA)
	// RFC 1035 §4.2.1: over UDP at most 512 bytes; the rest is signalled
	// by TC so the client retries over TCP (RFC 7766).
	udp := a.Answer(q, true)
	if got := parse(t, udp); len(udp) > maxUDPSize || !got.TC || len(got.Answers) != 0 {
		t.Fatalf("UDP answer of %d bytes, TC %v, %d answers; want ≤512 bytes, TC, none", len(udp), got.TC, len(got.Answers))
	}
	if got := parse(t, a.Answer(q, false)); got.TC || len(got.Answers) != 100 {
		t.Fatalf("TCP answer TC %v with %d answers, want all 100", got.TC, len(got.Answers))
	}
}
