/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The options `create` and `run` share, turned into a Docker Engine API
 * create body (the same JSON the daemon receives from the docker CLI), so
 * the CLI and the API go through one validation path in libberth.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Long-only option ids. */
enum {
    OPT_NAME = 300,
    OPT_ENV_FILE,
    OPT_MEMORY_SWAP,
    OPT_CPUS,
    OPT_PIDS_LIMIT,
    OPT_TMPFS,
    OPT_READ_ONLY,
    OPT_CAP_ADD,
    OPT_CAP_DROP,
    OPT_SECURITY_OPT,
    OPT_ISOLATION,
    OPT_ROOTFS,
    OPT_USERNS,
    OPT_RM,
    OPT_ULIMIT,
    OPT_STOP_SIGNAL,
    OPT_STOP_TIMEOUT,
    OPT_ENTRYPOINT,
    OPT_NETWORK,
    OPT_PULL,
    OPT_RESTART,
    OPT_HEALTH_CMD,
    OPT_HEALTH_INTERVAL, /* the four durations in the order of their keys below */
    OPT_HEALTH_TIMEOUT,
    OPT_HEALTH_START_PERIOD,
    OPT_HEALTH_START_INTERVAL,
    OPT_HEALTH_RETRIES,
    OPT_NO_HEALTHCHECK,
    OPT_MOUNT,
    OPT_IP,
    OPT_NETWORK_ALIAS,
    OPT_EXPOSE,
    OPT_DNS,
    OPT_DNS_SEARCH,
    OPT_DNS_OPTION,
    OPT_ADD_HOST,
    OPT_DOMAINNAME,
    OPT_HELP,
};

static const struct option create_longopts[] = {
    { "name", required_argument, NULL, OPT_NAME },
    { "env", required_argument, NULL, 'e' },
    { "env-file", required_argument, NULL, OPT_ENV_FILE },
    { "workdir", required_argument, NULL, 'w' },
    { "user", required_argument, NULL, 'u' },
    { "hostname", required_argument, NULL, 'h' },
    { "memory", required_argument, NULL, 'm' },
    { "memory-swap", required_argument, NULL, OPT_MEMORY_SWAP },
    { "cpus", required_argument, NULL, OPT_CPUS },
    { "cpu-shares", required_argument, NULL, 'c' },
    { "pids-limit", required_argument, NULL, OPT_PIDS_LIMIT },
    { "volume", required_argument, NULL, 'v' },
    { "tmpfs", required_argument, NULL, OPT_TMPFS },
    { "mount", required_argument, NULL, OPT_MOUNT },
    { "read-only", no_argument, NULL, OPT_READ_ONLY },
    { "cap-add", required_argument, NULL, OPT_CAP_ADD },
    { "cap-drop", required_argument, NULL, OPT_CAP_DROP },
    { "security-opt", required_argument, NULL, OPT_SECURITY_OPT },
    { "isolation", required_argument, NULL, OPT_ISOLATION },
    { "rootfs", required_argument, NULL, OPT_ROOTFS },
    { "userns", required_argument, NULL, OPT_USERNS },
    { "rm", no_argument, NULL, OPT_RM },
    { "ulimit", required_argument, NULL, OPT_ULIMIT },
    { "stop-signal", required_argument, NULL, OPT_STOP_SIGNAL },
    { "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
    { "entrypoint", required_argument, NULL, OPT_ENTRYPOINT },
    { "label", required_argument, NULL, 'l' },
    { "network", required_argument, NULL, OPT_NETWORK },
    { "net", required_argument, NULL, OPT_NETWORK },
    { "ip", required_argument, NULL, OPT_IP },
    { "network-alias", required_argument, NULL, OPT_NETWORK_ALIAS },
    { "net-alias", required_argument, NULL, OPT_NETWORK_ALIAS },
    { "publish", required_argument, NULL, 'p' },
    { "publish-all", no_argument, NULL, 'P' },
    { "expose", required_argument, NULL, OPT_EXPOSE },
    { "dns", required_argument, NULL, OPT_DNS },
    { "dns-search", required_argument, NULL, OPT_DNS_SEARCH },
    { "dns-option", required_argument, NULL, OPT_DNS_OPTION },
    { "dns-opt", required_argument, NULL, OPT_DNS_OPTION },
    { "add-host", required_argument, NULL, OPT_ADD_HOST },
    { "domainname", required_argument, NULL, OPT_DOMAINNAME },
    { "pull", required_argument, NULL, OPT_PULL },
    { "restart", required_argument, NULL, OPT_RESTART },
    { "health-cmd", required_argument, NULL, OPT_HEALTH_CMD },
    { "health-interval", required_argument, NULL, OPT_HEALTH_INTERVAL },
    { "health-timeout", required_argument, NULL, OPT_HEALTH_TIMEOUT },
    { "health-retries", required_argument, NULL, OPT_HEALTH_RETRIES },
    { "health-start-period", required_argument, NULL, OPT_HEALTH_START_PERIOD },
    { "health-start-interval", required_argument, NULL, OPT_HEALTH_START_INTERVAL },
    { "no-healthcheck", no_argument, NULL, OPT_NO_HEALTHCHECK },
    { "tty", no_argument, NULL, 't' },
    { "interactive", no_argument, NULL, 'i' },
    { "detach", no_argument, NULL, 'd' },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

const char cli_create_options_help[] =
    "  -d, --detach               run in the background and print the id (run only)\n"
    "  -i, --interactive          keep stdin open\n"
    "  -t, --tty                  allocate a terminal\n"
    "      --name NAME            name the container\n"
    "      --rm                   remove the container when it exits\n"
    "      --restart POLICY       no, on-failure[:MAX], always or unless-stopped (berthd applies "
    "it)\n"
    "      --rootfs DIR           run from DIR as the root filesystem (then no IMAGE)\n"
    "      --pull POLICY          pull the image: missing (default), always or never\n"
    "      --isolation NAME       isolation driver (default from the config: process)\n"
    "  -e, --env NAME[=VALUE]     set an environment variable (NAME alone: take the caller's)\n"
    "      --env-file FILE        read NAME=VALUE lines from FILE\n"
    "      --entrypoint CMD       override the entrypoint\n"
    "  -w, --workdir DIR          working directory inside the container\n"
    "  -u, --user USER[:GROUP]    user and group, by name or number\n"
    "  -h, --hostname NAME        container host name\n"
    "  -l, --label KEY=VALUE      set a label\n"
    "  -m, --memory SIZE          memory limit (e.g. 512m)\n"
    "      --memory-swap SIZE     memory plus swap limit; -1 for unlimited swap\n"
    "      --cpus N               number of CPUs (e.g. 1.5)\n"
    "  -c, --cpu-shares N         relative CPU weight\n"
    "      --pids-limit N         process limit\n"
    "  -v, --volume SRC:DST[:ro]  mount a host directory (SRC absolute) or a named volume\n"
    "                             (made when missing); -v DST alone: an anonymous volume\n"
    "      --mount type=volume|bind,source=SRC,target=DST[,readonly][,volume-nocopy]\n"
    "                             the same in Docker's --mount syntax\n"
    "      --tmpfs DST[:OPTS]     mount a tmpfs\n"
    "      --read-only            mount the root filesystem read-only\n"
    "      --cap-add CAP          add a capability (or ALL)\n"
    "      --cap-drop CAP         drop a capability (or ALL)\n"
    "      --security-opt OPT     seccomp=unconfined|FILE, no-new-privileges\n"
    "      --ulimit NAME=SOFT[:HARD]  set a resource limit\n"
    "      --userns MAP           user namespace: CONTAINER_ID:HOST_ID:COUNT\n"
    "      --network NET          bridge (default), host, none or a network's name or id\n"
    "      --ip IP                the container's IPv4 address on --network NET\n"
    "      --network-alias NAME   another name the container has on --network NET\n"
    "  -p, --publish [IP:][HOSTPORT:]PORT[/PROTO]\n"
    "                             publish a container port on the host (no HOSTPORT:\n"
    "                             an ephemeral one; ranges such as 8000-8001:80-81)\n"
    "  -P, --publish-all          publish every exposed port on an ephemeral host port\n"
    "      --expose PORT[-PORT][/PROTO]  expose a port (or a range) without publishing it\n"
    "      --dns IP               a DNS server for the container's resolv.conf\n"
    "      --dns-search DOMAIN    a DNS search domain\n"
    "      --dns-option OPT       a resolv.conf option (e.g. ndots:2)\n"
    "      --add-host HOST:IP     an /etc/hosts entry (IP may be host-gateway)\n"
    "      --domainname NAME      container NIS domain name\n"
    "      --stop-signal SIG      signal that stops the container (default SIGTERM)\n"
    "      --stop-timeout SECS    seconds before SIGKILL on stop (default 10)\n"
    "      --help                 show this help\n";

static int append_new(json_t *obj, const char *key, json_t *value)
{
    json_t *arr = json_object_get(obj, key);
    if (!arr) {
        arr = json_array();
        json_object_set_new(obj, key, arr);
    }
    return json_array_append_new(arr, value);
}

static int append(json_t *obj, const char *key, const char *value)
{
    json_t *arr = json_object_get(obj, key);
    if (!arr) {
        arr = json_array();
        json_object_set_new(obj, key, arr);
    }
    return json_array_append_new(arr, json_string(value));
}

/* @obj's object member @key, made empty on first use. */
static json_t *object_member(json_t *obj, const char *key)
{
    json_t *m = json_object_get(obj, key);
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(obj, key, m);
    }
    return m;
}

/*
 * --mount type=volume,source=NAME,target=/path[,readonly][,volume-nocopy]
 * as one HostConfig.Mounts object; the engine checks the values.
 */
static int parse_mount(json_t *hc, const char *text)
{
    char *copy = strdup(text), *save = NULL;
    json_t *m = json_object(), *vo = NULL;

    if (!copy || !m) {
        free(copy);
        json_decref(m);
        cli_error("out of memory");
        return -1;
    }
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        const char *val = eq ? eq + 1 : NULL;
        if (eq)
            *eq = '\0';
        if (!strcmp(tok, "type") && val)
            json_object_set_new(m, "Type", json_string(val));
        else if ((!strcmp(tok, "source") || !strcmp(tok, "src")) && val)
            json_object_set_new(m, "Source", json_string(val));
        else if ((!strcmp(tok, "target") || !strcmp(tok, "destination") || !strcmp(tok, "dst")) &&
                 val)
            json_object_set_new(m, "Target", json_string(val));
        else if (!strcmp(tok, "readonly") || !strcmp(tok, "ro"))
            json_object_set_new(m, "ReadOnly",
                                json_boolean(!val || !strcmp(val, "1") || !strcmp(val, "true")));
        else if (!strcmp(tok, "volume-nocopy")) {
            if (!vo)
                json_object_set_new(m, "VolumeOptions", vo = json_object());
            json_object_set_new(vo, "NoCopy",
                                json_boolean(!val || !strcmp(val, "1") || !strcmp(val, "true")));
        } else {
            cli_error("invalid --mount field '%s' in '%s'", tok, text);
            json_decref(m);
            free(copy);
            return -1;
        }
    }
    free(copy);
    if (!json_object_get(m, "Type"))
        json_object_set_new(m, "Type", json_string("volume"));
    append_new(hc, "Mounts", m);
    return 0;
}

static int parse_env_file(json_t *body, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    int lineno = 0;

    if (!f) {
        cli_error("--env-file %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *s = line;
        lineno++;
        s[strcspn(s, "\r\n")] = '\0';
        if (!berth_utf8_valid(s)) {
            cli_error("--env-file %s:%d: not valid UTF-8", path, lineno);
            fclose(f);
            return -1;
        }
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        if (*s == '=') {
            cli_error("--env-file %s:%d: no variable name", path, lineno);
            fclose(f);
            return -1;
        }
        if (!strchr(s, '=')) {
            /* NAME alone: the caller's value, as docker does. */
            const char *v = getenv(s);
            char *kv;
            if (!v)
                continue;
            if (asprintf(&kv, "%s=%s", s, v) < 0)
                break;
            append(body, "Env", kv);
            free(kv);
            continue;
        }
        append(body, "Env", s);
    }
    fclose(f);
    return 0;
}

static int parse_long(const char *opt, const char *text, long long min, long long *ret)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v < min) {
        cli_error("invalid %s value: '%s'", opt, text);
        return -1;
    }
    *ret = v;
    return 0;
}

/* A Go-style duration ("1m30s", "500ms", "2h") in nanoseconds, as docker's --health-* take. */
static int parse_duration(const char *opt, const char *text, long long *ret_ns)
{
    static const struct {
        const char *unit;
        long long ns;
    } units[] = { { "ns", 1 },           { "us", 1000LL },       { "ms", 1000000LL },
                  { "s", 1000000000LL }, { "m", 60000000000LL }, { "h", 3600000000000LL } };
    const char *p = text;
    long long total = 0;

    if (!strcmp(text, "0")) {
        *ret_ns = 0;
        return 0;
    }
    while (*p) {
        char *end;
        double v;
        size_t best = 0, k = 0;

        errno = 0;
        v = strtod(p, &end);
        if (end == p || errno || v < 0)
            goto bad;
        /* The longest unit name that matches ("ms" before "m"). */
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].unit);
            if (!strncmp(end, units[i].unit, n) && n > best) {
                best = n;
                k = i;
            }
        }
        if (!best)
            goto bad;
        total += (long long)(v * (double)units[k].ns);
        p = end + best;
    }
    if (p == text)
        goto bad;
    *ret_ns = total;
    return 0;
bad:
    cli_error("invalid %s value: '%s' (a duration such as 30s or 1m30s)", opt, text);
    return -1;
}

/* Config.Healthcheck, made on first use. */
static json_t *healthcheck(json_t *body)
{
    json_t *h = json_object_get(body, "Healthcheck");
    if (!h) {
        h = json_object();
        json_object_set_new(body, "Healthcheck", h);
    }
    return h;
}

static int parse_ulimit(json_t *hc, const char *text)
{
    char name[64];
    const char *eq = strchr(text, '=');
    long long soft, hard;
    char *colon, *end;

    if (!eq || eq == text || (size_t)(eq - text) >= sizeof(name)) {
        cli_error("invalid --ulimit '%s': want NAME=SOFT[:HARD]", text);
        return -1;
    }
    memcpy(name, text, (size_t)(eq - text));
    name[eq - text] = '\0';
    errno = 0;
    soft = strtoll(eq + 1, &colon, 10);
    hard = soft;
    if (colon == eq + 1 || errno || (*colon && *colon != ':')) {
        cli_error("invalid --ulimit '%s': want NAME=SOFT[:HARD]", text);
        return -1;
    }
    if (*colon == ':') {
        hard = strtoll(colon + 1, &end, 10);
        if (end == colon + 1 || *end || errno) {
            cli_error("invalid --ulimit '%s': want NAME=SOFT[:HARD]", text);
            return -1;
        }
    }
    if (soft > hard) {
        cli_error("invalid --ulimit '%s': the soft limit exceeds the hard one", text);
        return -1;
    }
    if (!json_object_get(hc, "Ulimits"))
        json_object_set_new(hc, "Ulimits", json_array());
    json_array_append_new(json_object_get(hc, "Ulimits"),
                          json_pack("{s:s, s:I, s:I}", "Name", name, "Soft", (json_int_t)soft,
                                    "Hard", (json_int_t)hard));
    return 0;
}

int cli_parse_create(int argc, char **argv, int is_run, const char *usage, struct cli_create *ret)
{
    json_t *body = json_object(), *hc = json_object();
    const char *entrypoint = NULL, *ip = NULL;
    json_t *aliases = json_array();
    int c;

    memset(ret, 0, sizeof(*ret));
    json_object_set_new(body, "HostConfig", hc);
    if (cli_args_utf8(argc, argv) < 0)
        goto fail;
    optind = 1;
    opterr = 0;
    /* '+': options stop at the command, whose own arguments follow. */
    while ((c = getopt_long(argc, argv, "+e:w:u:h:m:c:v:l:p:Ptid", create_longopts, NULL)) != -1) {
        int64_t bytes;
        long long n;
        berth_err_t err = { 0 };
        char msg[512];

        switch (c) {
        case OPT_HELP:
            fputs(usage, stdout);
            fputs(cli_create_options_help, stdout);
            json_decref(aliases);
            json_decref(body);
            return 1;
        case OPT_NAME:
            ret->name = optarg;
            break;
        case 'e':
            if (!strchr(optarg, '=')) {
                const char *v = getenv(optarg);
                char *kv;
                if (v && asprintf(&kv, "%s=%s", optarg, v) >= 0) {
                    append(body, "Env", kv);
                    free(kv);
                }
            } else {
                append(body, "Env", optarg);
            }
            break;
        case OPT_ENV_FILE:
            if (parse_env_file(body, optarg) < 0)
                goto fail;
            break;
        case 'w':
            json_object_set_new(body, "WorkingDir", json_string(optarg));
            break;
        case 'u':
            json_object_set_new(body, "User", json_string(optarg));
            break;
        case 'h':
            json_object_set_new(body, "Hostname", json_string(optarg));
            break;
        case 'm':
        case OPT_MEMORY_SWAP:
            if (c == OPT_MEMORY_SWAP && strcmp(optarg, "-1") == 0) {
                json_object_set_new(hc, "MemorySwap", json_integer(-1));
                break;
            }
            if (berth_parse_bytes(optarg, &bytes, &err) < 0) {
                cli_error("%s: %s", c == 'm' ? "--memory" : "--memory-swap", err.msg);
                goto fail;
            }
            json_object_set_new(hc, c == 'm' ? "Memory" : "MemorySwap", json_integer(bytes));
            break;
        case OPT_CPUS:
            if (berth_parse_cpus(optarg, &bytes, &err) < 0) {
                cli_error("%s", err.msg);
                goto fail;
            }
            json_object_set_new(hc, "NanoCpus", json_integer(bytes));
            break;
        case 'c':
            if (parse_long("--cpu-shares", optarg, 0, &n) < 0)
                goto fail;
            json_object_set_new(hc, "CpuShares", json_integer(n));
            break;
        case OPT_PIDS_LIMIT:
            if (parse_long("--pids-limit", optarg, -1, &n) < 0)
                goto fail;
            json_object_set_new(hc, "PidsLimit", json_integer(n));
            break;
        case 'v':
            /* docker run -v /path: an anonymous volume (Config.Volumes); SRC:DST a bind or volume. */
            if (!strchr(optarg, ':')) {
                if (!json_object_get(body, "Volumes"))
                    json_object_set_new(body, "Volumes", json_object());
                json_object_set_new(json_object_get(body, "Volumes"), optarg, json_object());
            } else {
                append(hc, "Binds", optarg);
            }
            break;
        case OPT_MOUNT:
            if (parse_mount(hc, optarg) < 0)
                goto fail;
            break;
        case OPT_TMPFS: {
            const char *colon = strchr(optarg, ':');
            char *dest = colon ? strndup(optarg, (size_t)(colon - optarg)) : strdup(optarg);
            if (!json_object_get(hc, "Tmpfs"))
                json_object_set_new(hc, "Tmpfs", json_object());
            json_object_set_new(json_object_get(hc, "Tmpfs"), dest,
                                json_string(colon ? colon + 1 : ""));
            free(dest);
            break;
        }
        case OPT_READ_ONLY:
            json_object_set_new(hc, "ReadonlyRootfs", json_true());
            break;
        case OPT_CAP_ADD:
            append(hc, "CapAdd", optarg);
            break;
        case OPT_CAP_DROP:
            append(hc, "CapDrop", optarg);
            break;
        case OPT_SECURITY_OPT:
            append(hc, "SecurityOpt", optarg);
            break;
        case OPT_ISOLATION:
            json_object_set_new(hc, "Isolation", json_string(optarg));
            break;
        case OPT_ROOTFS: {
            char *abs = realpath(optarg, NULL);
            if (!abs) {
                cli_error("--rootfs %s: %s", optarg, strerror(errno));
                goto fail;
            }
            json_object_set_new(body, "Rootfs", json_string(abs));
            free(abs);
            break;
        }
        case OPT_USERNS:
            json_object_set_new(hc, "UsernsMode", json_string(optarg));
            break;
        case OPT_RESTART: {
            /* POLICY[:MAX]; the engine checks the name and the combination with --rm. */
            const char *colon = strchr(optarg, ':');
            json_t *rp = json_object();
            json_object_set_new(rp, "Name",
                                colon ? json_stringn(optarg, (size_t)(colon - optarg))
                                      : json_string(optarg));
            if (colon) {
                if (parse_long("--restart", colon + 1, 0, &n) < 0) {
                    json_decref(rp);
                    goto fail;
                }
                json_object_set_new(rp, "MaximumRetryCount", json_integer(n));
            }
            json_object_set_new(hc, "RestartPolicy", rp);
            break;
        }
        case OPT_HEALTH_CMD:
            json_object_set_new(healthcheck(body), "Test",
                                json_pack("[s, s]", "CMD-SHELL", optarg));
            break;
        case OPT_HEALTH_INTERVAL:
        case OPT_HEALTH_TIMEOUT:
        case OPT_HEALTH_START_PERIOD:
        case OPT_HEALTH_START_INTERVAL: {
            static const char *const keys[] = { "Interval", "Timeout", "StartPeriod",
                                                "StartInterval" };
            static const char *const names[] = { "--health-interval", "--health-timeout",
                                                 "--health-start-period",
                                                 "--health-start-interval" };
            if (parse_duration(names[c - OPT_HEALTH_INTERVAL], optarg, &n) < 0)
                goto fail;
            json_object_set_new(healthcheck(body), keys[c - OPT_HEALTH_INTERVAL], json_integer(n));
            break;
        }
        case OPT_HEALTH_RETRIES:
            if (parse_long("--health-retries", optarg, 0, &n) < 0)
                goto fail;
            json_object_set_new(healthcheck(body), "Retries", json_integer(n));
            break;
        case OPT_NO_HEALTHCHECK:
            json_object_set_new(healthcheck(body), "Test", json_pack("[s]", "NONE"));
            break;
        case OPT_RM:
            json_object_set_new(hc, "AutoRemove", json_true());
            ret->auto_remove = 1;
            break;
        case OPT_ULIMIT:
            if (parse_ulimit(hc, optarg) < 0)
                goto fail;
            break;
        case OPT_STOP_SIGNAL:
            json_object_set_new(body, "StopSignal", json_string(optarg));
            break;
        case OPT_STOP_TIMEOUT:
            if (parse_long("--stop-timeout", optarg, -1, &n) < 0)
                goto fail;
            json_object_set_new(body, "StopTimeout", json_integer(n));
            break;
        case OPT_ENTRYPOINT:
            entrypoint = optarg;
            break;
        case 'l': {
            const char *eq = strchr(optarg, '=');
            char *key = eq ? strndup(optarg, (size_t)(eq - optarg)) : strdup(optarg);
            if (!json_object_get(body, "Labels"))
                json_object_set_new(body, "Labels", json_object());
            json_object_set_new(json_object_get(body, "Labels"), key,
                                json_string(eq ? eq + 1 : ""));
            free(key);
            break;
        }
        case OPT_PULL:
            if (strcmp(optarg, "missing") == 0) {
                ret->pull = CLI_PULL_MISSING;
            } else if (strcmp(optarg, "always") == 0) {
                ret->pull = CLI_PULL_ALWAYS;
            } else if (strcmp(optarg, "never") == 0) {
                ret->pull = CLI_PULL_NEVER;
            } else {
                cli_error("invalid --pull value '%s' (use missing, always or never)", optarg);
                goto fail;
            }
            break;
        case OPT_NETWORK:
            /* A network's name or id, or a mode: the engine says which exist. */
            if (!*optarg) {
                cli_error("--network needs a network's name");
                goto fail;
            }
            json_object_set_new(hc, "NetworkMode", json_string(optarg));
            break;
        case OPT_IP:
            if (cli_check_ip("--ip", optarg, AF_INET, msg, sizeof(msg)) < 0) {
                cli_error("%s", msg);
                goto fail;
            }
            ip = optarg;
            break;
        case OPT_NETWORK_ALIAS:
            json_array_append_new(aliases, json_string(optarg));
            break;
        case 'p':
            if (cli_parse_publish(optarg, object_member(hc, "PortBindings"),
                                  object_member(body, "ExposedPorts"), msg, sizeof(msg)) < 0) {
                cli_error("%s", msg);
                goto fail;
            }
            break;
        case 'P':
            json_object_set_new(hc, "PublishAllPorts", json_true());
            break;
        case OPT_EXPOSE:
            if (cli_parse_expose(optarg, object_member(body, "ExposedPorts"), msg, sizeof(msg)) <
                0) {
                cli_error("%s", msg);
                goto fail;
            }
            break;
        case OPT_DNS:
            /* resolv.conf takes addresses only, of either family. */
            if (cli_check_ip("--dns", optarg, AF_INET, NULL, 0) < 0 &&
                cli_check_ip("--dns", optarg, AF_INET6, NULL, 0) < 0) {
                cli_error("invalid --dns '%s': not an IP address", optarg);
                goto fail;
            }
            append(hc, "Dns", optarg);
            break;
        case OPT_DNS_SEARCH:
            if (!*optarg || strlen(optarg) > 255 || strpbrk(optarg, " \t\n")) {
                cli_error("invalid --dns-search '%s': want a domain name", optarg);
                goto fail;
            }
            append(hc, "DnsSearch", optarg);
            break;
        case OPT_DNS_OPTION:
            if (!*optarg || strpbrk(optarg, " \t\n")) {
                cli_error("invalid --dns-option '%s': want one resolv.conf option", optarg);
                goto fail;
            }
            append(hc, "DnsOptions", optarg);
            break;
        case OPT_ADD_HOST: {
            char entry[512];
            if (cli_parse_add_host(optarg, entry, sizeof(entry), msg, sizeof(msg)) < 0) {
                cli_error("%s", msg);
                goto fail;
            }
            append(hc, "ExtraHosts", entry);
            break;
        }
        case OPT_DOMAINNAME:
            json_object_set_new(body, "Domainname", json_string(optarg));
            break;
        case 't':
            json_object_set_new(body, "Tty", json_true());
            ret->tty = 1;
            break;
        case 'i':
            json_object_set_new(body, "OpenStdin", json_true());
            json_object_set_new(body, "StdinOnce", json_true());
            ret->interactive = 1;
            break;
        case 'd':
            if (!is_run)
                goto unknown;
            ret->detach = 1;
            break;
        default:
        unknown:
            if (optopt)
                cli_error("%s: option '-%c' %s (see 'berth %s --help')", argv[0], optopt,
                          strchr("ewuhmcvlp", optopt) ? "needs a value" : "is unknown", argv[0]);
            else
                cli_error("%s: bad option '%s' (see 'berth %s --help')", argv[0], argv[optind - 1],
                          argv[0]);
            goto fail;
        }
    }
    if (entrypoint)
        json_object_set_new(body, "Entrypoint", json_pack("[s]", entrypoint));
    /* Without --rootfs the first operand is the image, as in docker's IMAGE [COMMAND] [ARG...]. */
    if (!json_object_get(body, "Rootfs")) {
        if (optind >= argc) {
            cli_error("%s: name an image, or a directory with --rootfs (see 'berth %s --help')",
                      argv[0], argv[0]);
            goto fail;
        }
        ret->image = argv[optind++];
        json_object_set_new(body, "Image", json_string(ret->image));
    }
    if (optind < argc) {
        json_t *cmd = json_array();
        for (int i = optind; i < argc; i++)
            json_array_append_new(cmd, json_string(argv[i]));
        json_object_set_new(body, "Cmd", cmd);
    }
    /* No --network: the engine's default network ("bridge"), as with docker. */
    /* --ip and --network-alias are the endpoint settings of the one network named. */
    if (ip || json_array_size(aliases) > 0) {
        const char *net = json_string_value(json_object_get(hc, "NetworkMode"));
        json_t *ep = json_object();
        if (!net || !strcmp(net, "none") || !strcmp(net, "host") || !strcmp(net, "default") ||
            !strcmp(net, "bridge")) {
            cli_error("%s needs a user network: add --network NAME",
                      ip ? "--ip" : "--network-alias");
            json_decref(ep);
            goto fail;
        }
        if (ip)
            json_object_set_new(ep, "IPAMConfig", json_pack("{s:s}", "IPv4Address", ip));
        if (json_array_size(aliases) > 0)
            json_object_set(ep, "Aliases", aliases);
        json_object_set_new(body, "NetworkingConfig",
                            json_pack("{s:{s:o}}", "EndpointsConfig", net, ep));
    }
    json_decref(aliases);
    ret->body = body;
    return 0;
fail:
    json_decref(aliases);
    json_decref(body);
    return -1;
}

/* Pull @c's image with its progress on stderr, as docker run does. */
static int pull_for_create(berth_engine_t *e, const struct cli_create *c)
{
    return cli_pull(e, c->image, NULL, NULL, stderr, 0, NULL);
}

static int image_missing(berth_engine_t *e, const char *image)
{
    json_t *j = NULL;
    int r = berth_image_inspect(e, image, &j, NULL);

    json_decref(j);
    return r == -ENOENT;
}

/* berth_container_create, or berth_container_create_run for @run. */
static int create(berth_engine_t *e, const struct cli_create *c, int run, char ret_id[65],
                  berth_err_t *err)
{
    return run ? berth_container_create_run(e, c->name, c->body, ret_id, err)
               : berth_container_create(e, c->name, c->body, ret_id, err);
}

int cli_create_container(berth_engine_t *e, const struct cli_create *c, int run, char ret_id[65])
{
    berth_err_t err = { 0 };
    int r;

    ret_id[0] = '\0';
    if (c->image && c->pull == CLI_PULL_ALWAYS && (r = pull_for_create(e, c)) < 0)
        return r;
    r = create(e, c, run, ret_id, &err);
    /*
     * -ENOENT also means a missing storage driver: pull only when the image
     * itself is what is missing.
     */
    if (r == -ENOENT && !ret_id[0] && c->image && c->pull == CLI_PULL_MISSING &&
        image_missing(e, c->image)) {
        char familiar[600];
        if (cli_image_names(c->image, NULL, 0, familiar, sizeof(familiar), NULL) < 0)
            snprintf(familiar, sizeof(familiar), "%s", c->image);
        fprintf(stderr, "Unable to find image '%s' locally\n", familiar);
        if ((r = pull_for_create(e, c)) < 0)
            return r;
        memset(&err, 0, sizeof(err));
        r = create(e, c, run, ret_id, &err);
    }
    if (r < 0)
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
    return r;
}
