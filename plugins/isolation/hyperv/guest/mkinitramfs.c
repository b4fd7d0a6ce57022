/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-mkinitramfs: pack files into a newc cpio initramfs for the hyperv
 * guest (initramfs-cpio.h), e.g. the static agent as /init:
 *
 *   berth-mkinitramfs [-z] -o OUT ENTRY...
 *
 * Each ENTRY is a few arguments (so paths may hold any character):
 *   file  GUEST HOST MODE        HOST's contents; MODE octal, or "-" for HOST's
 *   dir   GUEST MODE
 *   nod   GUEST MODE c|b MAJOR MINOR
 *   slink GUEST TARGET
 * Parent directories are added as needed. -z gzips the archive. OUT is
 * written to a temporary file and renamed, so it is whole or absent.
 * Exit status: 0 on success, 1 on failure, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "initramfs-cpio.h"

static void usage(void)
{
    fprintf(stderr, "usage: berth-mkinitramfs [-z] -o OUT ENTRY...\n"
                    "  file  GUEST HOST MODE|-\n"
                    "  dir   GUEST MODE\n"
                    "  nod   GUEST MODE c|b MAJOR MINOR\n"
                    "  slink GUEST TARGET\n");
    exit(2);
}

static int parse_num(const char *s, int base, uint32_t max, uint32_t *ret)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, base);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return -EINVAL;
    *ret = (uint32_t)v;
    return 0;
}

static int bad_number(const char *what, const char *s)
{
    fprintf(stderr, "berth-mkinitramfs: bad %s \"%s\"\n", what, s);
    return -EINVAL;
}

/* The number of arguments after an entry's type word, or -1 for an unknown type. */
static int entry_nargs(const char *kind)
{
    return strcmp(kind, "file") == 0    ? 3
           : strcmp(kind, "dir") == 0   ? 2
           : strcmp(kind, "nod") == 0   ? 5
           : strcmp(kind, "slink") == 0 ? 2
                                        : -1;
}

/* Usage errors end the program before the output file is created. */
static void check_entries(int argc, char **argv, int i)
{
    while (i < argc) {
        int nargs = entry_nargs(argv[i]);
        if (nargs < 0) {
            fprintf(stderr, "berth-mkinitramfs: unknown entry type \"%s\"\n", argv[i]);
            usage();
        }
        if (i + nargs >= argc) {
            fprintf(stderr, "berth-mkinitramfs: \"%s\" needs %d arguments\n", argv[i], nargs);
            usage();
        }
        i += nargs + 1;
    }
}

/* Add the entry at argv[*i] (checked by check_entries()), advancing *i past it. */
static int add_entry(hv_cpio_t *c, char **argv, int *i, berth_err_t *err)
{
    const char *kind = argv[*i];
    int nargs = entry_nargs(kind);
    char **a = argv + *i + 1;
    *i += nargs + 1;
    uint32_t mode, major, minor;
    if (strcmp(kind, "slink") == 0)
        return hv_cpio_add_symlink(c, a[0], a[1], err);
    const char *mode_s = kind[0] == 'f' ? a[2] : a[1];
    if (strcmp(kind, "file") == 0 && strcmp(mode_s, "-") == 0)
        mode = HV_CPIO_MODE_HOST;
    else if (parse_num(mode_s, 8, 07777, &mode) < 0)
        return bad_number("mode", mode_s);
    if (strcmp(kind, "file") == 0)
        return hv_cpio_add_file(c, a[0], a[1], mode, err);
    if (strcmp(kind, "dir") == 0)
        return hv_cpio_add_dir(c, a[0], mode, err);
    if (strlen(a[2]) != 1)
        return bad_number("node type", a[2]);
    /* Linux's dev_t holds a 12-bit major and a 20-bit minor. */
    if (parse_num(a[3], 10, 0xfff, &major) < 0)
        return bad_number("major", a[3]);
    if (parse_num(a[4], 10, 0xfffff, &minor) < 0)
        return bad_number("minor", a[4]);
    return hv_cpio_add_node(c, a[0], a[2][0], mode, major, minor, err);
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    uint32_t flags = 0;
    int opt;
    while ((opt = getopt(argc, argv, "+zo:h")) != -1) {
        switch (opt) {
        case 'z':
            flags |= HV_CPIO_GZIP;
            break;
        case 'o':
            out = optarg;
            break;
        default:
            usage();
        }
    }
    if (!out || optind >= argc)
        usage();
    check_entries(argc, argv, optind);

    size_t tmplen = strlen(out) + sizeof(".XXXXXX");
    char *tmp = malloc(tmplen);
    if (!tmp) {
        perror("berth-mkinitramfs");
        return 1;
    }
    snprintf(tmp, tmplen, "%s.XXXXXX", out);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "berth-mkinitramfs: create %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return 1;
    }
    berth_err_t err = { 0 };
    hv_cpio_t *c = NULL;
    int r = hv_cpio_new(fd, flags, &c, &err);
    for (int i = optind; r == 0 && i < argc;)
        r = add_entry(c, argv, &i, &err);
    if (r == 0)
        r = hv_cpio_finish(c, &err);
    hv_cpio_free(c);
    /* The archive is readable by anyone: it holds a boot image, nothing secret. */
    if (r == 0 && fchmod(fd, 0644) < 0) {
        r = -errno;
        snprintf(err.msg, sizeof(err.msg), "chmod %s: %s", tmp, strerror(errno));
    }
    if (close(fd) < 0 && r == 0) {
        r = -errno;
        snprintf(err.msg, sizeof(err.msg), "write %s: %s", tmp, strerror(errno));
    }
    if (r == 0 && rename(tmp, out) < 0) {
        r = -errno;
        snprintf(err.msg, sizeof(err.msg), "rename to %s: %s", out, strerror(errno));
    }
    if (r < 0) {
        unlink(tmp);
        /* add_entry() prints its own argument errors and leaves err empty. */
        if (err.msg[0])
            fprintf(stderr, "berth-mkinitramfs: %s\n", err.msg);
    }
    free(tmp);
    return r < 0 ? 1 : 0;
}
