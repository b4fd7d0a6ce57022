/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-network masquerade rule and nat rule removal (network-cni-masq.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/sdk.h>

#include "network-cni-exec.h"
#include "network-cni-masq.h"

/* Where iptables is looked for: the process's PATH, as the plugins get it. */
static char *find_tool(const char *name)
{
    const char *sys = getenv("PATH");
    return network_cni_find_plugin(sys && *sys ? sys : "/usr/sbin:/usr/bin:/sbin:/bin", name);
}

int network_cni_masq_comment(const char *net_id, char dst[NETWORK_CNI_MASQ_COMMENT_MAX])
{
    int n = snprintf(dst, NETWORK_CNI_MASQ_COMMENT_MAX, "berth:%s", net_id ? net_id : "");
    return n < 0 || n >= NETWORK_CNI_MASQ_COMMENT_MAX || !net_id || !*net_id ? -EINVAL : 0;
}

/* `iptables -w -t nat OP POSTROUTING <the rule>`; returns what network_cni_run does. */
static int rule_op(char *iptables, const char *op, const cni_masq_t *m, const char *comment,
                   unsigned timeout_s, berth_err_t *err)
{
    char *argv[] = { iptables,
                     "-w",
                     "-t",
                     "nat",
                     (char *)op,
                     "POSTROUTING",
                     "-s",
                     (char *)m->subnet,
                     "!",
                     "-o",
                     (char *)m->bridge,
                     "-m",
                     "comment",
                     "--comment",
                     (char *)comment,
                     "-j",
                     "MASQUERADE",
                     NULL };
    return network_cni_run(argv, timeout_s, NULL, err);
}

/* Whether the stamp file @p path holds exactly @p boot_id (a non-empty one). */
static int stamp_valid(const char *path, const char *boot_id)
{
    char buf[64];
    ssize_t n;
    int fd;

    if (!*boot_id)
        return 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return strcmp(buf, boot_id) == 0;
}

/* Write @p boot_id to @p path through a private file and a rename: readers never see a part. */
static void stamp_write(const char *path, const char *boot_id)
{
    char *tmp;
    size_t len = strlen(boot_id);
    int fd, ok;

    if (!*boot_id || asprintf(&tmp, "%s.tmp-%d", path, (int)getpid()) < 0)
        return;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(tmp);
        return;
    }
    ok = write(fd, boot_id, len) == (ssize_t)len;
    if (close(fd) < 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0)
        unlink(tmp);
    free(tmp);
}

/*
 * The stamp dir, made if missing and locked (an flock on the directory
 * itself, so no lock file is left behind): a descriptor to close, or -1
 * when there is no usable dir (then nothing is stamped, which is only slower).
 */
static int stamp_dir_lock(const char *dir)
{
    int fd;

    if (!dir || (mkdir(dir, 0700) < 0 && errno != EEXIST))
        return -1;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

int network_cni_masq_ensure(const cni_masq_t *m, const char *stamp_dir, const char *boot_id,
                            int force, unsigned timeout_s, berth_err_t *err)
{
    char comment[NETWORK_CNI_MASQ_COMMENT_MAX], *stamp = NULL, *iptables = NULL;
    int r, lock = -1;

    if (network_cni_masq_comment(m->net_id, comment) < 0 || strchr(m->net_id, '/') || !m->subnet ||
        !*m->subnet || !m->bridge || !*m->bridge)
        return berth_err_set(err, -EINVAL, "cni: masquerade: invalid network");
    if (!boot_id)
        boot_id = "";
    if (stamp_dir && asprintf(&stamp, "%s/%s", stamp_dir, m->net_id) < 0)
        return berth_err_set(err, -ENOMEM, "cni: out of memory");
    /* The fast path: made since this boot, nothing to run. */
    if (stamp && !force && stamp_valid(stamp, boot_id)) {
        free(stamp);
        return 0;
    }
    if (stamp) {
        lock = stamp_dir_lock(stamp_dir);
        /* Someone else may have made it while this one waited for the lock. */
        if (lock >= 0 && !force && stamp_valid(stamp, boot_id)) {
            r = 0;
            goto out;
        }
    }
    iptables = find_tool("iptables");
    if (!iptables) {
        r = berth_err_set(err, -ENOENT,
                          "cni: network %s: iptables not found in PATH (needed for its masquerade)",
                          m->net_id);
        goto out;
    }
    /* -C fails when the rule is missing (exit 1) and on errors; -A then says which. */
    r = rule_op(iptables, "-C", m, comment, timeout_s, NULL);
    if (r < 0)
        r = rule_op(iptables, "-A", m, comment, timeout_s, err);
    if (r == 0 && stamp && lock >= 0)
        stamp_write(stamp, boot_id);
out:
    if (lock >= 0)
        close(lock);
    free(iptables);
    free(stamp);
    return r;
}

int network_cni_masq_remove(const char *net_id, const char *stamp_dir, unsigned timeout_s,
                            berth_err_t *err)
{
    char comment[NETWORK_CNI_MASQ_COMMENT_MAX], *stamp = NULL;
    int r, lock;

    if (network_cni_masq_comment(net_id, comment) < 0 || strchr(net_id, '/'))
        return berth_err_set(err, -EINVAL, "cni: masquerade: invalid network");
    /* The stamp first: a crash in between leaves a rule that is re-made, never a stamp that lies. */
    lock = stamp_dir ? stamp_dir_lock(stamp_dir) : -1;
    if (stamp_dir && asprintf(&stamp, "%s/%s", stamp_dir, net_id) >= 0) {
        unlink(stamp);
        free(stamp);
    }
    r = network_cni_nat_remove(comment, comment, timeout_s, err);
    if (lock >= 0)
        close(lock);
    return r;
}

/* Tokens of one `iptables -S` line, undoing its quoting ("name: \"x\" id: \"y\""). */
static int split_rule(const char *line, char ***ret_argv, size_t *ret_n)
{
    char **argv = NULL, *tok;
    size_t n = 0, len;
    const char *p = line;

    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        tok = malloc(strlen(p) + 1);
        if (!tok)
            goto fail;
        len = 0;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                tok[len++] = *p;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ' ')
                tok[len++] = *p++;
        }
        tok[len] = '\0';
        char **nv = realloc(argv, (n + 2) * sizeof(*argv));
        if (!nv) {
            free(tok);
            goto fail;
        }
        argv = nv;
        argv[n++] = tok;
        argv[n] = NULL;
    }
    *ret_argv = argv;
    *ret_n = n;
    return 0;
fail:
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    free(argv);
    return -ENOMEM;
}

int network_cni_nat_remove(const char *comment, const char *hint, unsigned timeout_s,
                           berth_err_t *err)
{
    char *iptables = find_tool("iptables"), *restore = find_tool("iptables-restore");
    char *list_argv[7], *out = NULL, *line, *save, *script = NULL;
    char **dels[8];
    char *chains[8];
    size_t n_dels = 0, n_chains = 0, len = 0;
    int done = 0, r = 0;
    FILE *f;

    /* No iptables: nothing can have made a rule. */
    if (!iptables)
        goto out;
    list_argv[0] = iptables;
    list_argv[1] = "-w";
    list_argv[2] = "-t";
    list_argv[3] = "nat";
    list_argv[4] = "-S";
    list_argv[5] = "POSTROUTING";
    list_argv[6] = NULL;
    if ((r = network_cni_run(list_argv, timeout_s, &out, err)) < 0)
        goto out;
    /*
     * The matching rules, and an iptables-restore script that deletes them
     * and their chains in one run: `-S` prints rules in the restore format,
     * so each line only turns from -A into -D.
     */
    f = open_memstream(&script, &len);
    if (f)
        fputs("*nat\n", f);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char **argv = NULL;
        size_t n = 0, i;
        int match = 0;
        const char *target = NULL;

        if (strncmp(line, "-A POSTROUTING ", 15) != 0 || (hint && !strstr(line, hint)))
            continue;
        if (split_rule(line, &argv, &n) < 0)
            continue;
        for (i = 0; i + 1 < n; i++) {
            if (strcmp(argv[i], "--comment") == 0 && strcmp(argv[i + 1], comment) == 0)
                match = 1;
            if (strcmp(argv[i], "-j") == 0)
                target = argv[i + 1];
        }
        if (match && n_dels < sizeof(dels) / sizeof(dels[0])) {
            if (f)
                fprintf(f, "-D%s\n", line + 2);
            if (target && strncmp(target, "CNI-", 4) == 0 &&
                n_chains < sizeof(chains) / sizeof(chains[0]) &&
                (chains[n_chains] = strdup(target)))
                n_chains++;
            dels[n_dels++] = argv;
            continue;
        }
        for (i = 0; i < n; i++)
            free(argv[i]);
        free(argv);
    }
    if (f) {
        /* The per-container chain a rule jumped to: flush, then delete it. */
        for (size_t i = 0; i < n_chains; i++)
            fprintf(f, "-F %s\n-X %s\n", chains[i], chains[i]);
        fputs("COMMIT\n", f);
        if (fclose(f) != 0) {
            free(script);
            script = NULL;
        }
    }
    if (n_dels > 0 && restore && script) {
        char *argv[4] = { restore, "-w", "--noflush", NULL };
        done = network_cni_run_input(argv, script, timeout_s, NULL, NULL) == 0;
    }
    /* Without iptables-restore, or when it failed: one iptables run per rule and chain. */
    for (size_t k = 0; k < n_dels; k++) {
        char **argv = dels[k], **del;
        size_t n = 0;
        while (argv[n])
            n++;
        del = done ? NULL : calloc(n + 5, sizeof(*del));
        if (del) {
            del[0] = iptables;
            del[1] = "-w";
            del[2] = "-t";
            del[3] = "nat";
            del[4] = "-D";
            for (size_t i = 1; i < n; i++)
                del[4 + i] = argv[i];
            if (network_cni_run(del, timeout_s, NULL, r < 0 ? NULL : err) < 0 && r == 0)
                r = -EIO;
            free(del);
        } else if (!done && r == 0) {
            r = berth_err_set(err, -ENOMEM, "cni: out of memory");
        }
        for (size_t i = 0; i < n; i++)
            free(argv[i]);
        free(argv);
    }
    for (size_t i = 0; i < n_chains && !done; i++) {
        char *argv[7] = { iptables, "-w", "-t", "nat", "-F", chains[i], NULL };
        network_cni_run(argv, timeout_s, NULL, NULL);
        argv[4] = "-X";
        network_cni_run(argv, timeout_s, NULL, NULL);
    }
out:
    for (size_t i = 0; i < n_chains; i++)
        free(chains[i]);
    free(script);
    free(out);
    free(restore);
    free(iptables);
    return r;
}
