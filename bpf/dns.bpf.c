// SPDX-License-Identifier: GPL-2.0-only
/*
 * DNS: cgroup_skb egress and ingress at the cgroup2 root copy the DNS
 * payload of a traced socket's packets (UDP or TCP, port 53 at either end)
 * from the kernel's own buffer; user space parses it. These programs run
 * for every packet of every socket on the host, so the cheapest test comes
 * first: the port, then whether a traced process marked the socket (sk
 * storage, see net.h). They never drop a packet.
 */
#include "net.h"

#define DNS_PORT 53
/* Network byte order of constants and loads (x86: little-endian). */
#define bpf_htons(x) __builtin_bswap16(x)
#define bpf_ntohs(x) __builtin_bswap16(x)
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/*
 * The packet's transport protocol, its offset and its ports. The headers
 * of a packet in these hooks are almost always in the linear part: read
 * them in place (no helper call, which matters here: this runs for every
 * packet on the host), and through bpf_skb_load_bytes otherwise.
 */
static __always_inline bool dns_ports(struct __sk_buff *skb, __u32 *proto, __u32 *l4off, __u16 *sport, __u16 *dport)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__be16 ports[2];

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;
		if ((void *)(ip + 1) > end)
			return false;
		/* A later fragment has no port; a first one carries the header. */
		if (ip->frag_off & bpf_htons(IP_OFFSET))
			return false;
		*proto = ip->protocol;
		*l4off = ip->ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;
		if ((void *)(ip6 + 1) > end)
			return false;
		*proto = ip6->nexthdr;
		*l4off = sizeof(*ip6);
	} else {
		return false;
	}
	if (*proto != IPPROTO_UDP && *proto != IPPROTO_TCP)
		return false;
	__u32 off = *l4off & 0x3f; /* at most 60: the IPv4 header length */
	if (data + off + sizeof(ports) <= end) {
		__builtin_memcpy(ports, data + off, sizeof(ports));
	} else if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports))) {
		return false;
	}
	*sport = bpf_ntohs(ports[0]);
	*dport = bpf_ntohs(ports[1]);
	return true;
}

static __always_inline int dns_skb(struct __sk_buff *skb, __u32 direction)
{
	__u8 saddr[16] = {}, daddr[16] = {};
	__u32 l4off = 0, proto = 0;
	__u16 sport = 0, dport = 0, family;

	if (!dns_ports(skb, &proto, &l4off, &sport, &dport))
		return 1;
	if (sport != DNS_PORT && dport != DNS_PORT)
		return 1;
	/* A DNS packet: now the addresses, from a copy of the header. */
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		family = AF_INET;
		__builtin_memcpy(saddr, &ip.saddr, 4);
		__builtin_memcpy(daddr, &ip.daddr, 4);
	} else {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		family = AF_INET6;
		__builtin_memcpy(saddr, &ip6.saddr, 16);
		__builtin_memcpy(daddr, &ip6.daddr, 16);
	}

	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	struct sock_owner *o = bpf_sk_storage_get(&socks, sk, 0, 0);
	if (!o)
		return 1;

	__u32 off = l4off + 8; /* UDP header */
	if (proto == IPPROTO_TCP) {
		__u8 doff = 0;
		if (bpf_skb_load_bytes(skb, l4off + 12, &doff, 1))
			return 1;
		off = l4off + (doff >> 4) * 4;
	}
	if (skb->len <= off)
		return 1; /* no payload: a TCP handshake or acknowledgement */
	__u32 len = skb->len - off;

	struct dns_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_matched(KIND_DNS);
		count_lost_ringbuf(KIND_DNS);
		return 1;
	}
	owner_header(&e->hdr, o, KIND_DNS);
	e->cookie = bpf_get_socket_cookie(skb);
	e->direction = direction;
	e->protocol = proto;
	e->payload_len = len;
	e->family = family;
	e->sport = sport;
	e->dport = dport;
	e->_pad = 0;
	__builtin_memcpy(e->saddr, saddr, 16);
	__builtin_memcpy(e->daddr, daddr, 16);
	/* 1..DNS_BYTES, in a form the verifier can bound (len is at least 1). */
	__u32 n = len - 1;
	if (n > DNS_BYTES - 1)
		n = DNS_BYTES - 1;
	n += 1;
	if (bpf_skb_load_bytes(skb, off, e->payload, n))
		n = 0;
	e->cap_len = n;
	stamp(&e->hdr);
	bpf_ringbuf_submit(e, wakeup_flags());
	return 1;
}

SEC("cgroup_skb/egress")
int handle_dns_egress(struct __sk_buff *skb)
{
	return dns_skb(skb, DNS_EGRESS);
}

SEC("cgroup_skb/ingress")
int handle_dns_ingress(struct __sk_buff *skb)
{
	return dns_skb(skb, DNS_INGRESS);
}
