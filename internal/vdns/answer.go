package vdns

import (
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// SchemaVersion is the Kubernetes DNS schema version the server answers for
// dns-version.<zone> TXT (kubernetes/dns docs/specification.md §2.2).
const SchemaVersion = "1.0.1"

// Source is what the server knows about the virtual cluster. Every method
// must be safe for concurrent use and cheap: it is called once or a few times
// per query.
type Source interface {
	// HasSynced reports whether the source has seen the whole cluster once;
	// until then the server answers SERVFAIL rather than a wrong NXDOMAIN.
	HasSynced() bool
	// Service returns the Service namespace/name, or nil if there is none.
	Service(namespace, name string) (*corev1.Service, error)
	// HasServices reports whether namespace has at least one Service.
	HasServices(namespace string) (bool, error)
	// EndpointSlices returns the EndpointSlices of the Service
	// namespace/service (label kubernetes.io/service-name).
	EndpointSlices(namespace, service string) ([]*discoveryv1.EndpointSlice, error)
}

// maxUDPSize is the largest UDP answer sent to a client without EDNS0
// (RFC 1035 §4.2.1); maxEDNSSize caps what a client's EDNS0 may ask for.
const (
	maxUDPSize  = 512
	maxEDNSSize = 4096
)

// answerer turns one query into one response.
type answerer struct {
	zone   string // lower case, no trailing dot
	ttl    uint32
	source Source
	soa    dnsmessage.Resource
}

func newAnswerer(zone string, ttl uint32, source Source) (*answerer, error) {
	zoneName, err := dnsmessage.NewName(zone + ".")
	if err != nil {
		return nil, err
	}
	ns, err := dnsmessage.NewName("ns.dns." + zone + ".")
	if err != nil {
		return nil, err
	}
	mbox, err := dnsmessage.NewName("hostmaster." + zone + ".")
	if err != nil {
		return nil, err
	}
	return &answerer{
		zone: zone, ttl: ttl, source: source,
		soa: dnsmessage.Resource{
			Header: dnsmessage.ResourceHeader{Name: zoneName, Type: dnsmessage.TypeSOA, Class: dnsmessage.ClassINET, TTL: ttl},
			Body:   &dnsmessage.SOAResource{NS: ns, MBox: mbox, Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, MinTTL: ttl},
		},
	}, nil
}

// reply is an answer before it is packed.
type reply struct {
	rcode         dnsmessage.RCode
	authoritative bool
	answers       []dnsmessage.Resource
	additionals   []dnsmessage.Resource
	withSOA       bool // negative answer: SOA in the authority section (RFC 2308)
	outside       bool // the name is outside the zone (REFUSED unless forwarded)
}

func nxdomain() reply {
	return reply{rcode: dnsmessage.RCodeNameError, authoritative: true, withSOA: true}
}
func nodata() reply { return reply{rcode: dnsmessage.RCodeSuccess, authoritative: true, withSOA: true} }

// Answer returns the response to the DNS message query, or nil when the
// message deserves none (too short for a header, or itself a response).
// udp says the response travels over UDP and must fit the client's size
// (512 bytes, or its EDNS0 size up to 4096); a larger one is truncated (TC
// set, no records) so the client retries over TCP.
func (a *answerer) Answer(query []byte, udp bool) []byte {
	resp, _ := a.answer(query, udp)
	return resp
}

// answer is Answer that also reports a well-formed query for a name
// outside the zone (answered REFUSED), which a server with an upstream
// forwards instead.
func (a *answerer) answer(query []byte, udp bool) (resp []byte, outside bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false // no ID to answer to, or a response: never reflect
	}
	out := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return pack(dnsmessage.Message{Header: withRCode(out, dnsmessage.RCodeFormatError)}), false
	}
	q := qs[0]
	limit, edns, err := clientLimits(&p)
	if err != nil {
		return pack(dnsmessage.Message{Header: withRCode(out, dnsmessage.RCodeFormatError), Questions: qs}), false
	}
	var r reply
	switch {
	case h.OpCode != 0:
		r = reply{rcode: dnsmessage.RCodeNotImplemented}
	case q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY:
		r = reply{rcode: dnsmessage.RCodeRefused}
	default:
		r = a.resolve(q)
		outside = r.outside
	}
	out.RCode, out.Authoritative = r.rcode, r.authoritative
	msg := dnsmessage.Message{Header: out, Questions: qs, Answers: r.answers, Additionals: r.additionals}
	if r.withSOA {
		msg.Authorities = []dnsmessage.Resource{a.soa}
	}
	if edns {
		// RFC 6891 §6.1.1: a responder that understands EDNS0 includes an OPT.
		var opt dnsmessage.ResourceHeader
		if err := opt.SetEDNS0(maxEDNSSize, dnsmessage.RCodeSuccess, false); err == nil {
			msg.Additionals = append(msg.Additionals, dnsmessage.Resource{Header: opt, Body: &dnsmessage.OPTResource{}})
		}
	}
	b := pack(msg)
	if b == nil {
		return pack(dnsmessage.Message{Header: withRCode(out, dnsmessage.RCodeServerFailure), Questions: qs}), false
	}
	if udp && len(b) > limit {
		out.Truncated = true
		return pack(dnsmessage.Message{Header: out, Questions: qs}), outside
	}
	return b, outside
}

// clientLimits reads the rest of the query for an EDNS0 OPT record: the
// largest UDP response the client takes and whether it sent one.
func clientLimits(p *dnsmessage.Parser) (int, bool, error) {
	if err := p.SkipAllAnswers(); err != nil {
		return 0, false, err
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return 0, false, err
	}
	limit, edns := maxUDPSize, false
	for {
		h, err := p.AdditionalHeader()
		if err == dnsmessage.ErrSectionDone {
			return limit, edns, nil
		}
		if err != nil {
			return 0, false, err
		}
		if h.Type == dnsmessage.TypeOPT {
			edns = true
			limit = min(max(int(h.Class), maxUDPSize), maxEDNSSize)
		}
		if err := p.SkipAdditional(); err != nil {
			return 0, false, err
		}
	}
}

func withRCode(h dnsmessage.Header, rc dnsmessage.RCode) dnsmessage.Header {
	h.RCode = rc
	return h
}

func pack(m dnsmessage.Message) []byte {
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

// resolve answers q from the source. Names outside the zone are REFUSED
// (and marked outside): the server is authoritative for the cluster domain
// only; only a server given an upstream forwards them.
func (a *answerer) resolve(q dnsmessage.Question) reply {
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	var rest string
	switch {
	case name == a.zone:
	case strings.HasSuffix(name, "."+a.zone):
		rest = strings.TrimSuffix(name, "."+a.zone)
	default:
		return reply{rcode: dnsmessage.RCodeRefused, outside: true}
	}
	if !a.source.HasSynced() {
		return reply{rcode: dnsmessage.RCodeServerFailure}
	}
	var labels []string
	if rest != "" {
		labels = strings.Split(rest, ".")
	}
	r, err := a.records(q, labels)
	if err != nil {
		return reply{rcode: dnsmessage.RCodeServerFailure}
	}
	return r
}

// records answers the labels left of the zone, leftmost first.
func (a *answerer) records(q dnsmessage.Question, labels []string) (reply, error) {
	n := len(labels)
	switch {
	case n == 0: // the zone apex
		if q.Type == dnsmessage.TypeSOA || q.Type == dnsmessage.TypeALL {
			return reply{authoritative: true, answers: []dnsmessage.Resource{a.soa}}, nil
		}
		return nodata(), nil
	case n == 1 && labels[0] == "dns-version":
		// kubernetes/dns specification §2.2.
		if q.Type != dnsmessage.TypeTXT && q.Type != dnsmessage.TypeALL {
			return nodata(), nil
		}
		return reply{authoritative: true, answers: []dnsmessage.Resource{{
			Header: a.header(q.Name, dnsmessage.TypeTXT), Body: &dnsmessage.TXTResource{TXT: []string{SchemaVersion}},
		}}}, nil
	case labels[n-1] != "svc":
		// <ip>.<ns>.pod.<zone> is off, as CoreDNS's "pods disabled" (its
		// default): NXDOMAIN.
		return nxdomain(), nil
	case n == 1: // svc.<zone>: an empty non-terminal (RFC 8020: not NXDOMAIN)
		return nodata(), nil
	case n == 2: // <ns>.svc.<zone>
		ok, err := a.source.HasServices(labels[0])
		if err != nil || !ok {
			return nxdomain(), err
		}
		return nodata(), nil
	case n == 3: // <svc>.<ns>.svc.<zone>
		return a.service(q, labels[1], labels[0])
	case n == 4: // <hostname>.<svc>.<ns>.svc.<zone>, or _<proto>.… above an SRV name
		if strings.HasPrefix(labels[0], "_") {
			svc, err := a.source.Service(labels[2], labels[1])
			if err != nil || svc == nil {
				return nxdomain(), err
			}
			return nodata(), nil
		}
		return a.endpoint(q, labels[2], labels[1], labels[0])
	case n == 5 && strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_"):
		return a.srv(q, labels[3], labels[2], labels[0][1:], labels[1][1:])
	}
	return nxdomain(), nil
}

func (a *answerer) header(name dnsmessage.Name, t dnsmessage.Type) dnsmessage.ResourceHeader {
	return dnsmessage.ResourceHeader{Name: name, Type: t, Class: dnsmessage.ClassINET, TTL: a.ttl}
}

// service answers <svc>.<ns>.svc.<zone> (kubernetes/dns specification
// §2.3.1, §2.4.1, §2.5).
func (a *answerer) service(q dnsmessage.Question, ns, name string) (reply, error) {
	svc, err := a.source.Service(ns, name)
	if err != nil || svc == nil {
		return nxdomain(), err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		// §2.5: a CNAME, whatever the type asked; the client resolves the
		// target itself (the server does not recurse).
		target, err := dnsmessage.NewName(strings.TrimSuffix(svc.Spec.ExternalName, ".") + ".")
		if err != nil {
			return reply{rcode: dnsmessage.RCodeServerFailure}, nil
		}
		return reply{authoritative: true, answers: []dnsmessage.Resource{{
			Header: a.header(q.Name, dnsmessage.TypeCNAME), Body: &dnsmessage.CNAMEResource{CNAME: target},
		}}}, nil
	}
	var ips []netip.Addr
	if isHeadless(svc) {
		eps, err := a.readyEndpoints(svc)
		if err != nil {
			return reply{}, err
		}
		if len(eps) == 0 {
			return nxdomain(), nil // §2.4.1: no ready endpoints, NXDOMAIN
		}
		for _, ep := range eps {
			ips = append(ips, ep.ip)
		}
	} else {
		ips = clusterIPs(svc)
	}
	answers := a.addressRecords(q.Name, q.Type, ips)
	if len(answers) == 0 {
		return nodata(), nil
	}
	return reply{authoritative: true, answers: answers}, nil
}

// endpoint answers <hostname>.<svc>.<ns>.svc.<zone>: the ready endpoints of
// a headless Service with that hostname (§2.4.1), the dashed IP standing
// for the hostname of an endpoint without one (CoreDNS's choice of the
// "system-assigned identifier").
func (a *answerer) endpoint(q dnsmessage.Question, ns, name, host string) (reply, error) {
	svc, err := a.source.Service(ns, name)
	if err != nil || svc == nil || !isHeadless(svc) {
		return nxdomain(), err
	}
	eps, err := a.readyEndpoints(svc)
	if err != nil {
		return reply{}, err
	}
	var ips []netip.Addr
	for _, ep := range eps {
		if ep.host == host {
			ips = append(ips, ep.ip)
		}
	}
	if len(ips) == 0 {
		return nxdomain(), nil
	}
	answers := a.addressRecords(q.Name, q.Type, ips)
	if len(answers) == 0 {
		return nodata(), nil
	}
	return reply{authoritative: true, answers: answers}, nil
}

// srv answers _<port>._<proto>.<svc>.<ns>.svc.<zone> (§2.3.2, §2.4.2): one
// SRV per named port for a Service with a cluster IP, pointing at the
// Service's name; one per ready endpoint and port for a headless Service,
// pointing at the endpoint's name, with the endpoint's port number (the
// port the client connects to directly, as CoreDNS answers). The targets'
// addresses go in the additional section.
func (a *answerer) srv(q dnsmessage.Question, ns, name, port, proto string) (reply, error) {
	svc, err := a.source.Service(ns, name)
	if err != nil || svc == nil {
		return nxdomain(), err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nxdomain(), nil
	}
	base := name + "." + ns + ".svc." + a.zone + "."
	var answers, extra []dnsmessage.Resource
	if !isHeadless(svc) {
		target, err := dnsmessage.NewName(base)
		if err != nil {
			return reply{rcode: dnsmessage.RCodeServerFailure}, nil
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Name != "" && strings.EqualFold(sp.Name, port) && strings.EqualFold(string(protocolOf(sp.Protocol)), proto) {
				answers = append(answers, dnsmessage.Resource{
					Header: a.header(q.Name, dnsmessage.TypeSRV),
					Body:   &dnsmessage.SRVResource{Priority: 0, Weight: 100, Port: uint16(sp.Port), Target: target},
				})
			}
		}
		if len(answers) > 0 {
			extra = a.addressRecords(target, dnsmessage.TypeALL, clusterIPs(svc))
		}
	} else {
		eps, err := a.readyEndpoints(svc)
		if err != nil {
			return reply{}, err
		}
		for _, ep := range eps {
			for _, p := range ep.ports {
				if p.Name == nil || !strings.EqualFold(*p.Name, port) || p.Port == nil ||
					!strings.EqualFold(string(protocolOf(ptrValue(p.Protocol))), proto) {
					continue
				}
				target, err := dnsmessage.NewName(ep.host + "." + base)
				if err != nil {
					continue
				}
				answers = append(answers, dnsmessage.Resource{
					Header: a.header(q.Name, dnsmessage.TypeSRV),
					Body:   &dnsmessage.SRVResource{Priority: 0, Weight: 100, Port: uint16(*p.Port), Target: target},
				})
				extra = append(extra, a.addressRecords(target, dnsmessage.TypeALL, []netip.Addr{ep.ip})...)
			}
		}
	}
	if len(answers) == 0 {
		return nxdomain(), nil
	}
	if q.Type != dnsmessage.TypeSRV && q.Type != dnsmessage.TypeALL {
		return nodata(), nil
	}
	return reply{authoritative: true, answers: answers, additionals: extra}, nil
}

// addressRecords returns an A record for each IPv4 and an AAAA record for
// each IPv6 address among ips that qtype asks for.
func (a *answerer) addressRecords(name dnsmessage.Name, qtype dnsmessage.Type, ips []netip.Addr) []dnsmessage.Resource {
	var out []dnsmessage.Resource
	for _, ip := range ips {
		switch {
		case ip.Is4() && (qtype == dnsmessage.TypeA || qtype == dnsmessage.TypeALL):
			out = append(out, dnsmessage.Resource{Header: a.header(name, dnsmessage.TypeA), Body: &dnsmessage.AResource{A: ip.As4()}})
		case ip.Is6() && (qtype == dnsmessage.TypeAAAA || qtype == dnsmessage.TypeALL):
			out = append(out, dnsmessage.Resource{Header: a.header(name, dnsmessage.TypeAAAA), Body: &dnsmessage.AAAAResource{AAAA: ip.As16()}})
		}
	}
	return out
}

// readyEndpoint is one address of a headless Service's endpoint.
type readyEndpoint struct {
	ip    netip.Addr
	host  string // the endpoint's hostname, or its dashed IP
	ports []discoveryv1.EndpointPort
}

// readyEndpoints returns the ready endpoint addresses of svc, each once
// (§2.1: ready, or any with publishNotReadyAddresses; an EndpointSlice
// endpoint with no Ready condition counts as ready, as its API documents).
func (a *answerer) readyEndpoints(svc *corev1.Service) ([]readyEndpoint, error) {
	slices, err := a.source.EndpointSlices(svc.Namespace, svc.Name)
	if err != nil {
		return nil, err
	}
	var out []readyEndpoint
	seen := map[netip.Addr]bool{}
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue // FQDN slices carry no addresses to answer
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready && !svc.Spec.PublishNotReadyAddresses {
				continue
			}
			for _, addr := range ep.Addresses {
				ip, err := netip.ParseAddr(addr)
				if err != nil || seen[ip] {
					continue
				}
				seen[ip] = true
				host := dashed(ip)
				if ep.Hostname != nil && *ep.Hostname != "" {
					host = strings.ToLower(*ep.Hostname)
				}
				out = append(out, readyEndpoint{ip: ip, host: host, ports: s.Ports})
			}
		}
	}
	return out, nil
}

func isHeadless(svc *corev1.Service) bool { return svc.Spec.ClusterIP == corev1.ClusterIPNone }

func clusterIPs(svc *corev1.Service) []netip.Addr {
	raw := svc.Spec.ClusterIPs
	if len(raw) == 0 && svc.Spec.ClusterIP != "" {
		raw = []string{svc.Spec.ClusterIP}
	}
	var out []netip.Addr
	for _, s := range raw {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip)
		}
	}
	return out
}

// dashed is the name CoreDNS gives an endpoint without a hostname:
// 10.244.0.7 → 10-244-0-7.
func dashed(ip netip.Addr) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(ip.String())
}

func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
