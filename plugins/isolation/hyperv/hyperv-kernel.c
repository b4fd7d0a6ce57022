/* SPDX-License-Identifier: Apache-2.0 */
/* The guest kernel: the distribution's as the fallback (hyperv-kernel.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "guest/initramfs-cpio.h"
#include "hyperv-kernel.h"

/*
 * What the guest needs that Debian builds as modules: the virtio-mmio
 * transport (the devices), the console ports (the agent's channels), 9p
 * over virtio (the root filesystem and bind mounts), overlay (the process
 * driver may stack one), net and blk (networks, block roots). Dependencies
 * come from modules.dep.
 */
static const char *const wanted[] = { "virtio_mmio", "virtio_console", "9pnet_virtio", "9p",
                                      "overlay",     "virtio_net",     "virtio_blk" };

int hv_kernel_find_distro(const char *boot_dir, const char *modules_dir, hv_kernel_t *ret,
                          berth_err_t *err)
{
    DIR *d = opendir(boot_dir);
    struct dirent *de;
    char best[128] = "", dep[PATH_MAX];

    if (!d)
        return berth_err_set(err, -errno, "hyperv: %s: %s", boot_dir, strerror(errno));
    while ((de = readdir(d))) {
        const char *rel = de->d_name + strlen("vmlinuz-");
        if (strncmp(de->d_name, "vmlinuz-", strlen("vmlinuz-")) != 0 || !*rel ||
            strlen(rel) >= sizeof(best) || strchr(rel, '/'))
            continue;
        if (snprintf(dep, sizeof(dep), "%s/%s/modules.dep", modules_dir, rel) >= (int)sizeof(dep) ||
            access(dep, R_OK) < 0)
            continue;
        if (!best[0] || strverscmp(rel, best) > 0)
            snprintf(best, sizeof(best), "%s", rel);
    }
    closedir(d);
    if (!best[0])
        return berth_err_set(err, -ENOENT,
                             "hyperv: no guest kernel: berth's own is not installed and there is "
                             "no distribution kernel with its modules in %s (apt-get install "
                             "linux-image-amd64)",
                             boot_dir);
    snprintf(ret->release, sizeof(ret->release), "%s", best);
    snprintf(ret->path, sizeof(ret->path), "%s/vmlinuz-%s", boot_dir, best);
    return 0;
}

/* modules.dep, parsed in place: one entry per module, its path and its dependencies' paths. */
struct moddep {
    char *path; /* relative to the release's modules dir */
    char *deps; /* space-separated paths, as in the file */
    int state;  /* 0 new, 1 being visited, 2 placed */
};

struct modtab {
    char *text;
    struct moddep *v;
    size_t n;
};

static int modtab_load(const char *file, struct modtab *t, berth_err_t *err)
{
    FILE *f = fopen(file, "re");
    size_t cap = 0, len = 0;
    char *line;

    memset(t, 0, sizeof(*t));
    if (!f)
        return berth_err_set(err, -errno, "hyperv: %s: %s", file, strerror(errno));
    {
        char buf[65536];
        size_t got;
        while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
            char *nt = realloc(t->text, len + got + 1);
            if (!nt) {
                fclose(f);
                return berth_err_set(err, -ENOMEM, "hyperv: out of memory");
            }
            t->text = nt;
            memcpy(t->text + len, buf, got);
            len += got;
        }
    }
    fclose(f);
    if (!t->text)
        return berth_err_set(err, -EINVAL, "hyperv: %s is empty", file);
    t->text[len] = '\0';
    for (line = t->text; line && *line;) {
        char *nl = strchr(line, '\n'), *colon;
        if (nl)
            *nl = '\0';
        if ((colon = strchr(line, ':'))) {
            if (t->n == cap) {
                struct moddep *nv = realloc(t->v, (cap = cap ? cap * 2 : 1024) * sizeof(*nv));
                if (!nv)
                    return berth_err_set(err, -ENOMEM, "hyperv: out of memory");
                t->v = nv;
            }
            *colon = '\0';
            t->v[t->n++] = (struct moddep){ .path = line, .deps = colon + 1 };
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static void modtab_free(struct modtab *t)
{
    free(t->text);
    free(t->v);
}

/* The module named @name ("9pnet_virtio": the file's name without .ko*, '-' as '_'). */
static struct moddep *by_name(struct modtab *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        const char *base = strrchr(t->v[i].path, '/');
        size_t k;
        base = base ? base + 1 : t->v[i].path;
        for (k = 0; name[k] && base[k]; k++) {
            char c = base[k] == '-' ? '_' : base[k];
            if (c != name[k])
                break;
        }
        if (!name[k] && strncmp(base + k, ".ko", 3) == 0)
            return &t->v[i];
    }
    return NULL;
}

static struct moddep *by_path(struct modtab *t, const char *path, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strncmp(t->v[i].path, path, len) == 0 && t->v[i].path[len] == '\0')
            return &t->v[i];
    return NULL;
}

/* Append @m after everything it depends on to @order (depth first; a cycle is cut). */
static int place(struct modtab *t, struct moddep *m, struct moddep **order, size_t *n)
{
    const char *p = m->deps;

    if (m->state)
        return 0;
    m->state = 1;
    while (*p) {
        size_t len;
        struct moddep *d;
        p += strspn(p, " \t");
        len = strcspn(p, " \t");
        if (len && (d = by_path(t, p, len)))
            place(t, d, order, n);
        p += len;
    }
    m->state = 2;
    order[(*n)++] = m;
    return 0;
}

static int newer(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec > b->st_mtim.tv_sec ||
           (a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec >= b->st_mtim.tv_nsec);
}

/* Copy @src into @fd and pad with zeros to 512 bytes: the next archive starts aligned. */
static int copy_padded(const char *src, int fd, berth_err_t *err)
{
    char buf[65536];
    ssize_t got;
    off_t total = 0;
    int in = open(src, O_RDONLY | O_CLOEXEC);

    if (in < 0)
        return berth_err_set(err, -errno, "hyperv: %s: %s", src, strerror(errno));
    while ((got = read(in, buf, sizeof(buf))) > 0) {
        if (write(fd, buf, (size_t)got) != got) {
            close(in);
            return berth_err_set(err, -EIO, "hyperv: writing the initramfs: %s", strerror(errno));
        }
        total += got;
    }
    close(in);
    if (got < 0)
        return berth_err_set(err, -errno, "hyperv: reading %s: %s", src, strerror(errno));
    memset(buf, 0, 512);
    if (total % 512 && write(fd, buf, (size_t)(512 - total % 512)) != 512 - total % 512)
        return berth_err_set(err, -EIO, "hyperv: writing the initramfs: %s", strerror(errno));
    return 0;
}

int hv_kernel_distro_initrd(const hv_kernel_t *k, const char *modules_dir, const char *agent_initrd,
                            const char *cache_dir, char *ret_path, size_t size, berth_err_t *err)
{
    char dep[PATH_MAX], tmp[PATH_MAX], host[PATH_MAX], guest[PATH_MAX];
    struct stat s_out, s_agent, s_dep;
    struct modtab t = { 0 };
    struct moddep **order = NULL;
    hv_cpio_t *c = NULL;
    char *list = NULL;
    size_t n = 0, list_len = 0;
    FILE *lf = NULL;
    int fd = -1, r;

    if (snprintf(dep, sizeof(dep), "%s/%s/modules.dep", modules_dir, k->release) >=
            (int)sizeof(dep) ||
        snprintf(ret_path, size, "%s/initrd-%s.cpio", cache_dir, k->release) >= (int)size ||
        snprintf(tmp, sizeof(tmp), "%s/.initrd-%s.XXXXXX", cache_dir, k->release) >=
            (int)sizeof(tmp))
        return berth_err_set(err, -ENAMETOOLONG, "hyperv: initramfs path too long");
    if (stat(agent_initrd, &s_agent) < 0)
        return berth_err_set(err, -errno, "hyperv: the agent's initramfs %s: %s", agent_initrd,
                             strerror(errno));
    if (stat(dep, &s_dep) < 0)
        return berth_err_set(err, -errno, "hyperv: %s: %s", dep, strerror(errno));
    if (stat(ret_path, &s_out) == 0 && newer(&s_out, &s_agent) && newer(&s_out, &s_dep))
        return 0;

    if ((r = modtab_load(dep, &t, err)) < 0)
        goto out;
    if (!(order = calloc(t.n ? t.n : 1, sizeof(*order)))) {
        r = berth_err_set(err, -ENOMEM, "hyperv: out of memory");
        goto out;
    }
    /* A wanted module that modules.dep lacks is built into this kernel: nothing to load. */
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        struct moddep *m = by_name(&t, wanted[i]);
        if (m)
            place(&t, m, order, &n);
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        r = berth_err_set(err, -errno, "hyperv: %s: %s", tmp, strerror(errno));
        goto out;
    }
    if ((r = copy_padded(agent_initrd, fd, err)) < 0 || (r = hv_cpio_new(fd, 0, &c, err)) < 0)
        goto out;
    if (!(lf = open_memstream(&list, &list_len))) {
        r = berth_err_set(err, -ENOMEM, "hyperv: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (snprintf(host, sizeof(host), "%s/%s/%s", modules_dir, k->release, order[i]->path) >=
                (int)sizeof(host) ||
            snprintf(guest, sizeof(guest), "/lib/modules/%s/%s", k->release, order[i]->path) >=
                (int)sizeof(guest)) {
            r = berth_err_set(err, -ENAMETOOLONG, "hyperv: module path too long");
            goto out;
        }
        if ((r = hv_cpio_add_file(c, guest, host, 0644, err)) < 0)
            goto out;
        fprintf(lf, "%s\n", guest);
    }
    if (fclose(lf) != 0) {
        lf = NULL;
        r = berth_err_set(err, -ENOMEM, "hyperv: out of memory");
        goto out;
    }
    lf = NULL;
    if ((r = hv_cpio_add_data(c, HV_MODULES_LIST, list, list_len, 0644, err)) < 0 ||
        (r = hv_cpio_finish(c, err)) < 0)
        goto out;
    if (fsync(fd) < 0 || rename(tmp, ret_path) < 0) {
        r = berth_err_set(err, -errno, "hyperv: %s: %s", ret_path, strerror(errno));
        goto out;
    }
    tmp[0] = '\0';
    r = 0;
out:
    if (lf)
        fclose(lf);
    free(list);
    hv_cpio_free(c);
    if (fd >= 0)
        close(fd);
    if (tmp[0] && fd >= 0)
        unlink(tmp);
    free(order);
    modtab_free(&t);
    return r;
}

unsigned long hv_host_tsc_khz(void)
{
#if defined(__x86_64__) || defined(__i386__)
    struct timespec a, b, d = { 0, 10 * 1000 * 1000 };
    unsigned long long t0, t1;
    double ns;

    clock_gettime(CLOCK_MONOTONIC, &a);
    t0 = __rdtsc();
    while (nanosleep(&d, &d) < 0 && errno == EINTR)
        ;
    t1 = __rdtsc();
    clock_gettime(CLOCK_MONOTONIC, &b);
    ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    return ns > 0 ? (unsigned long)((double)(t1 - t0) / ns * 1e6) : 0;
#else
    return 0;
#endif
}
