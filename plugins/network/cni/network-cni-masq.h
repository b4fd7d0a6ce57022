/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Masquerade for the cni driver's networks: one nat rule per network that
 * the driver itself installs (Docker's way), instead of the bridge
 * plugin's chain per container (ipMasq), and removal of nat POSTROUTING
 * rules by their comment (the per-network rule, and the per-container
 * chains of networks made by berth before the per-network rule).
 *
 * iptables and iptables-restore are looked up in PATH; they run with
 * network_cni_run() (no shell, a timeout, no inherited descriptors).
 */
#ifndef NETWORK_CNI_MASQ_H
#define NETWORK_CNI_MASQ_H

#include <berth/types.h>

/** One network's masquerade rule; every string is borrowed for the call. */
typedef struct cni_masq {
    const char *net_id; /**< the berth network id: the rule's comment is "berth:<net_id>" */
    const char *subnet; /**< "a.b.c.d/n": the source addresses masqueraded */
    const char *bridge; /**< the Linux bridge: traffic that stays on it is not masqueraded */
} cni_masq_t;

/** Room for the rule's comment: "berth:" and a network id of up to 128 characters. */
#define NETWORK_CNI_MASQ_COMMENT_MAX (6 + 128 + 1)

/**
 * The comment that tags @p net_id's rule, into @p dst.
 * @return 0, or -EINVAL when the id does not fit.
 */
int network_cni_masq_comment(const char *net_id, char dst[NETWORK_CNI_MASQ_COMMENT_MAX]);

/**
 * Make sure the rule
 * `-t nat -A POSTROUTING -s SUBNET ! -o BRIDGE -m comment --comment berth:ID -j MASQUERADE`
 * exists: `iptables -w -C`, and `-A` when that fails.
 *
 * When @p stamp_dir is not NULL, a stamp file `<stamp_dir>/<net_id>` holding
 * @p boot_id records that the rule was made since this boot (the rules go
 * with a reboot, the networks stay): if it is there and @p force is 0,
 * nothing runs at all, which is what keeps the check off every attach. The
 * slow path holds an flock on @p stamp_dir (made when missing), so
 * concurrent callers add the rule once. A stamp that cannot be written is
 * no error; the next call just checks again. @p boot_id "" never matches.
 *
 * @return 0 when the rule exists, or a negative errno and one line in @p err
 * (-ENOENT no iptables in PATH, -EIO iptables failed).
 */
int network_cni_masq_ensure(const cni_masq_t *m, const char *stamp_dir, const char *boot_id,
                            int force, unsigned timeout_s, berth_err_t *err);

/**
 * Remove @p net_id's rule (every copy) and its stamp in @p stamp_dir (may be
 * NULL). Nothing to remove, or no iptables at all, is success.
 * @return 0, or a negative errno and one line in @p err when a rule stayed.
 */
int network_cni_masq_remove(const char *net_id, const char *stamp_dir, unsigned timeout_s,
                            berth_err_t *err);

/**
 * Remove every nat POSTROUTING rule whose comment is exactly @p comment and
 * the CNI-* chains they jump to (flushed, then deleted): one
 * `iptables -S POSTROUTING` and one `iptables-restore --noflush`, or one
 * `iptables` run per rule and chain when iptables-restore is missing or
 * fails. Only lines containing @p hint (NULL: all) are parsed.
 * @return 0 (also with nothing to remove or no iptables), or a negative
 * errno and one line in @p err when the rules could not be listed or one stayed.
 */
int network_cni_nat_remove(const char *comment, const char *hint, unsigned timeout_s,
                           berth_err_t *err);

#endif /* NETWORK_CNI_MASQ_H */
