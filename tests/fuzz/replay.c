/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main() for the fuzz targets when they are not built with libFuzzer (the
 * default gcc build): run the target on every file of the corpus, then on
 * deterministic pseudo-random mutations of them (bit flips, interesting
 * bytes, inserted, deleted, repeated and spliced ranges, truncation), so
 * CI exercises the targets under ASan and UBSan without clang. The same
 * seed gives the same inputs: a failure is reproduced by running again.
 *
 * Usage: fuzz-TARGET [--mutations N] [--seed S] DIR|FILE...
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (64u << 10)

struct input {
    uint8_t *data;
    size_t len;
};

static struct input *inputs;
static size_t n_inputs;
static uint64_t rng_state;

/* xorshift64*: small, deterministic, good enough to pick mutations with. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static size_t below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static int add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct input in = { 0 };
    struct input *grown;
    long len;

    if (!f || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    in.len = (size_t)len;
    if (!(in.data = malloc(in.len ? in.len : 1)) || fread(in.data, 1, in.len, f) != in.len ||
        !(grown = realloc(inputs, (n_inputs + 1) * sizeof(*inputs)))) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(in.data);
        fclose(f);
        return -1;
    }
    fclose(f);
    inputs = grown;
    inputs[n_inputs++] = in;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory's regular files, in name order (readdir's order is the file system's). */
static int add_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    int r = 0;

    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        char **grown;
        if (de->d_name[0] == '.' || !(grown = realloc(names, (n + 1) * sizeof(*names))))
            continue;
        names = grown;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i] ? names[i] : "");
        if (names[i] && stat(path, &st) == 0 && S_ISREG(st.st_mode) && add_file(path) < 0)
            r = -1;
        free(names[i]);
    }
    free(names);
    return r;
}

/* One mutation of @buf (length *len, room for REPLAY_MAX bytes). */
static void mutate_once(uint8_t *buf, size_t *len)
{
    static const uint8_t interesting[] = { 0,   1,   '\r', '\n', ' ', ':', '"',  '{',  '}',
                                           '[', ']', '\\', '0',  '9', '-', 0x7f, 0x80, 0xff };
    size_t n = *len, pos = below(n + 1), span;

    switch (below(8)) {
    case 0: /* flip a bit */
        if (n)
            buf[below(n)] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* an interesting byte */
        if (n)
            buf[below(n)] = interesting[below(sizeof(interesting))];
        break;
    case 2: /* insert bytes */
        span = 1 + below(8);
        if (n + span <= REPLAY_MAX) {
            memmove(buf + pos + span, buf + pos, n - pos);
            for (size_t i = 0; i < span; i++)
                buf[pos + i] = below(2) ? interesting[below(sizeof(interesting))] : (uint8_t)rnd();
            *len = n + span;
        }
        break;
    case 3: /* delete a range */
        if (pos < n) {
            span = 1 + below(n - pos < 32 ? n - pos : 32);
            memmove(buf + pos, buf + pos + span, n - pos - span);
            *len = n - span;
        }
        break;
    case 4: /* repeat a range */
        if (pos < n) {
            span = 1 + below(n - pos < 64 ? n - pos : 64);
            if (n + span <= REPLAY_MAX) {
                memmove(buf + pos + span, buf + pos, n - pos);
                *len = n + span;
            }
        }
        break;
    case 5: /* splice in a piece of another input */
    {
        const struct input *o = &inputs[below(n_inputs)];
        if (o->len) {
            size_t from = below(o->len);
            span = 1 + below(o->len - from < 128 ? o->len - from : 128);
            if (n + span <= REPLAY_MAX) {
                memmove(buf + pos + span, buf + pos, n - pos);
                memcpy(buf + pos, o->data + from, span);
                *len = n + span;
            }
        }
        break;
    }
    case 6: /* truncate */
        *len = pos;
        break;
    default: /* a digit run: lengths, sizes, ports, numbers in JSON */
        if (n) {
            size_t at = below(n);
            span = 1 + below(n - at < 6 ? n - at : 6);
            for (size_t i = 0; i < span; i++)
                buf[at + i] = (uint8_t)('0' + below(10));
        }
        break;
    }
}

int main(int argc, char **argv)
{
    unsigned long mutations = 2000, seed = 1;
    uint8_t *buf;
    int i;

    for (i = 1; i < argc; i++) {
        struct stat st;
        if (strcmp(argv[i], "--mutations") == 0 && i + 1 < argc) {
            mutations = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoul(argv[++i], NULL, 10);
        } else if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        } else if ((S_ISDIR(st.st_mode) ? add_dir(argv[i]) : add_file(argv[i])) < 0) {
            return 2;
        }
    }
    if (n_inputs == 0) {
        fprintf(stderr, "usage: %s [--mutations N] [--seed S] DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (size_t k = 0; k < n_inputs; k++)
        LLVMFuzzerTestOneInput(inputs[k].data, inputs[k].len);
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    if (!(buf = malloc(REPLAY_MAX)))
        return 2;
    for (unsigned long m = 0; m < mutations; m++) {
        const struct input *base = &inputs[below(n_inputs)];
        size_t len = base->len < REPLAY_MAX ? base->len : REPLAY_MAX;
        size_t rounds = 1 + below(4);
        memcpy(buf, base->data, len);
        for (size_t k = 0; k < rounds; k++)
            mutate_once(buf, &len);
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("%s: %zu corpus inputs and %lu mutations (seed %lu) ran, no crash\n", argv[0], n_inputs,
           mutations, seed);
    free(buf);
    for (size_t k = 0; k < n_inputs; k++)
        free(inputs[k].data);
    free(inputs);
    return 0;
}
