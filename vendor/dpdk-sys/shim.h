/* DPDK's fast-path functions are static inline in its headers, so Rust cannot link to
 * them: these are the out-of-line versions the switch calls. One call per burst, except
 * for the mbuf helpers used once per packet where a frame changes hands. */
#ifndef VSWITCH_DPDK_SHIM_H
#define VSWITCH_DPDK_SHIM_H
#include <stdint.h>
struct rte_mbuf;
struct rte_mempool;

uint16_t vsw_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t vsw_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *vsw_pktmbuf_alloc(struct rte_mempool *mp);
int vsw_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void vsw_pktmbuf_free(struct rte_mbuf *m);
void vsw_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n);
char *vsw_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *vsw_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
unsigned vsw_mempool_avail_count(const struct rte_mempool *mp);
int vsw_errno(void);
unsigned vsw_lcore_id(void);
#endif
