// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * devinfo_test [-d DEVICE]: an frdma device as libibverbs shows it.
 *
 * The device (frdma0 by default) is listed, opens through the frdma
 * provider, reports consistent device and port attributes, has one active
 * Ethernet (RoCE v2) port whose GID table holds the link-local GID of its
 * netdev's MAC and an IPv4-mapped GID for each IPv4 address of the netdev,
 * and allocates protection domains.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "tap.h"

static int mtu_bytes(enum ibv_mtu mtu)
{
	return mtu >= IBV_MTU_256 && mtu <= IBV_MTU_4096 ? 128 << mtu : -1;
}

static bool gid_is_zero(const union ibv_gid *gid)
{
	static const union ibv_gid zero;

	return !memcmp(gid, &zero, sizeof(zero));
}

static void gid_str(const union ibv_gid *gid, char *buf, size_t len)
{
	inet_ntop(AF_INET6, gid->raw, buf, len);
}

/* Is @addr, as an IPv4-mapped GID, in the port's table? */
static bool gid_table_has_ipv4(struct ibv_context *ctx, int tbl_len,
			       struct in_addr addr)
{
	union ibv_gid want = {};
	union ibv_gid gid;
	int i;

	want.raw[10] = 0xff;
	want.raw[11] = 0xff;
	memcpy(&want.raw[12], &addr, 4);
	for (i = 0; i < tbl_len; i++)
		if (!ibv_query_gid(ctx, 1, i, &gid) && !memcmp(&gid, &want, sizeof(gid)))
			return true;
	return false;
}

static void test_gids(struct ibv_context *ctx, const struct ibv_port_attr *pa)
{
	struct ibv_gid_entry entry;
	struct ifaddrs *ifa, *i;
	char name[IF_NAMESIZE] = "";
	char buf[INET6_ADDRSTRLEN];
	union ibv_gid gid;
	int naddr = 0;
	int ret;

	ret = ibv_query_gid(ctx, 1, 0, &gid);
	gid_str(&gid, buf, sizeof(buf));
	ok(!ret && !gid_is_zero(&gid), "GID 0 is set (%s)", buf);
	ok(gid.raw[0] == 0xfe && (gid.raw[1] & 0xc0) == 0x80,
	   "GID 0 is the netdev's link-local GID");

	ret = ibv_query_gid_ex(ctx, 1, 0, &entry, 0);
	ok(!ret, "ibv_query_gid_ex(port 1, index 0): %s", strerror(ret));
	if (ret)
		return;
	ok(entry.gid_type == IBV_GID_TYPE_ROCE_V2, "GID 0 is RoCE v2 (type %u)",
	   entry.gid_type);
	ok(entry.ndev_ifindex && if_indextoname(entry.ndev_ifindex, name),
	   "GID 0 names its netdev (ifindex %u, %s)", entry.ndev_ifindex, name);

	if (getifaddrs(&ifa)) {
		ok(false, "getifaddrs: %s", strerror(errno));
		return;
	}
	for (i = ifa; i; i = i->ifa_next) {
		struct in_addr a;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, name))
			continue;
		a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		inet_ntop(AF_INET, &a, buf, sizeof(buf));
		ok(gid_table_has_ipv4(ctx, pa->gid_tbl_len, a),
		   "the GID table holds %s of %s", buf, name);
		naddr++;
	}
	freeifaddrs(ifa);
	if (!naddr)
		diag("%s has no IPv4 address: no IPv4 GID to look for", name);

	ret = ibv_query_gid(ctx, 1, pa->gid_tbl_len, &gid);
	ok(ret != 0, "a GID index past the table fails");
}

int main(int argc, char **argv)
{
	const char *want = "frdma0";
	struct ibv_device **list, *dev = NULL;
	struct ibv_device_attr_ex ax = {};
	struct ibv_device_attr da;
	struct ibv_port_attr pa;
	struct ibv_context *ctx;
	struct ibv_pd *pd[4];
	long page = sysconf(_SC_PAGESIZE);
	int i, n, ret, opt;
	uint16_t pkey;

	while ((opt = getopt(argc, argv, "d:")) != -1) {
		if (opt != 'd') {
			fprintf(stderr, "usage: %s [-d DEVICE]\n", argv[0]);
			return 2;
		}
		want = optarg;
	}

	list = ibv_get_device_list(&n);
	ok(list != NULL, "ibv_get_device_list: %d devices", n);
	for (i = 0; list && i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), want))
			dev = list[i];
	if (!ok(dev != NULL, "%s is listed", want))
		return tap_done();
	ok(dev->transport_type == IBV_TRANSPORT_IB && dev->node_type == IBV_NODE_CA,
	   "%s is an IB-transport CA (RoCE)", want);

	ctx = ibv_open_device(dev);
	if (!ok(ctx != NULL, "ibv_open_device(%s): %s", want,
		ctx ? "ok" : strerror(errno)))
		return tap_done();

	ret = ibv_query_device(ctx, &da);
	if (ok(!ret, "ibv_query_device: %s", strerror(ret))) {
		ok(da.phys_port_cnt == 1, "one port (%u)", da.phys_port_cnt);
		ok(da.node_guid == ibv_get_device_guid(dev) && da.node_guid,
		   "node_guid matches the device's GUID");
		ok(da.fw_ver[0] != '\0', "fw_ver is set (%s)", da.fw_ver);
		ok(da.max_qp > 0 && da.max_qp_wr > 0 && da.max_cq > 0 &&
		   da.max_cqe > 0 && da.max_mr > 0 && da.max_pd > 0,
		   "object limits are set (qp %d wr %d cq %d cqe %d mr %d pd %d)",
		   da.max_qp, da.max_qp_wr, da.max_cq, da.max_cqe, da.max_mr,
		   da.max_pd);
		ok(da.max_sge > 0 && da.max_sge_rd > 0, "SGE limits are set (%d, %d)",
		   da.max_sge, da.max_sge_rd);
		ok(da.page_size_cap & (uint64_t)page,
		   "page_size_cap 0x%llx includes the page size",
		   (unsigned long long)da.page_size_cap);
		ok(da.max_mr_size >= (1ULL << 30), "max_mr_size 0x%llx >= 1 GiB",
		   (unsigned long long)da.max_mr_size);
		ok(da.device_cap_flags & IBV_DEVICE_PORT_ACTIVE_EVENT,
		   "reports port active events");
	}

	ret = ibv_query_device_ex(ctx, NULL, &ax);
	ok(!ret && ax.orig_attr.node_guid == da.node_guid &&
	   ax.orig_attr.max_qp == da.max_qp,
	   "ibv_query_device_ex agrees with ibv_query_device: %s", strerror(ret));

	ret = ibv_query_port(ctx, 1, &pa);
	if (ok(!ret, "ibv_query_port(1): %s", strerror(ret))) {
		ok(pa.state == IBV_PORT_ACTIVE, "port 1 is %s",
		   ibv_port_state_str(pa.state));
		ok(pa.phys_state == 5, "physical state LinkUp (%u)", pa.phys_state);
		ok(pa.link_layer == IBV_LINK_LAYER_ETHERNET,
		   "link layer is Ethernet (%u)", pa.link_layer);
		ok(pa.active_mtu >= IBV_MTU_256 && pa.active_mtu <= pa.max_mtu,
		   "active MTU %d within max MTU %d", mtu_bytes(pa.active_mtu),
		   mtu_bytes(pa.max_mtu));
		ok(pa.gid_tbl_len > 1, "GID table length %d", pa.gid_tbl_len);
		ok(pa.pkey_tbl_len >= 1, "P_Key table length %u", pa.pkey_tbl_len);
		ok(pa.max_msg_sz > 0, "max message size %u", pa.max_msg_sz);
		test_gids(ctx, &pa);
	}
	ok(ibv_query_port(ctx, 2, &pa) != 0, "port 2 does not exist");

	ret = ibv_query_pkey(ctx, 1, 0, &pkey);
	ok(!ret && pkey == 0xffff, "P_Key 0 is the default full P_Key (0x%x)",
	   ntohs(pkey));

	for (i = 0; i < 4; i++)
		pd[i] = ibv_alloc_pd(ctx);
	ok(pd[0] && pd[1] && pd[2] && pd[3], "four PDs allocated");
	for (i = 0, ret = 0; i < 4; i++)
		if (pd[i] && ibv_dealloc_pd(pd[i]))
			ret = errno ? errno : EIO;
	ok(!ret, "PDs deallocated: %s", strerror(ret));

	ok(!ibv_close_device(ctx), "ibv_close_device");
	ibv_free_device_list(list);
	return tap_done();
}
