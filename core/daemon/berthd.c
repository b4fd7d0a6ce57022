/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd: the engine behind a Docker Engine API endpoint, so the docker CLI
 * (and anything else speaking that API) works with berth. One libuv loop;
 * the same engine and store as the `berth` CLI. Listens on unix sockets
 * and, for remote administration, on TCP with mutual TLS only: a tcp://
 * address without --tlscacert, --tlscert and --tlskey is refused, whatever
 * the address (even loopback: plain TCP is never offered).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include <berth/engine.h>

#include "berth-build-config.h"

#include "api.h"
#include "http.h"

#define MAX_HOSTS 8

static const char usage_text[] =
    "Usage: berthd [OPTIONS]\n"
    "\n"
    "Serve the Docker Engine API (1.24 to 1.50) for berth's containers and images.\n"
    "\n"
    "Options:\n"
    "  -H, --host ADDR         listen here: unix:///PATH or tcp://HOST:PORT (repeatable;\n"
    "                          default unix://<runroot>/berth.sock)\n"
    "      --tlscacert FILE    CA (PEM) that clients' certificates must chain to\n"
    "      --tlscert FILE      the server's certificate (PEM)\n"
    "      --tlskey FILE       the server's private key (PEM)\n"
    "      --tlsverify         accepted for dockerd's sake: clients are always verified\n"
    "      --root DIR          persistent state (default /var/lib/berth)\n"
    "      --runroot DIR       runtime state (default /run/berth)\n"
    "      --config FILE       configuration file (default /etc/berth/berth.json)\n"
    "  -h, --help              show this help\n"
    "\n"
    "Sockets are mode 0660, group \"berth\" when that group exists. TCP is served\n"
    "only with mutual TLS (TLS 1.2 or later, a client certificate from the CA\n"
    "required): a tcp:// address needs --tlscacert, --tlscert and --tlskey.\n";

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* SIGTERM, SIGINT: stop listening, drop the connections, let the loop end. */
static void on_signal(uv_signal_t *h, int signum)
{
    bd_server_t *s = h->data;

    fprintf(stderr, "berthd: signal %d, stopping\n", signum);
    bd_server_close(s);
    uv_walk(h->loop, close_handle, NULL);
}

static void on_check_exit(uv_process_t *p, int64_t status, int term_signal)
{
    (void)status;
    (void)term_signal;
    uv_close((uv_handle_t *)p, (uv_close_cb)free);
}

/*
 * CNI CHECK of the endpoints running containers were given, after a
 * restart: in a `berth network check` of its own, so that the plugins' run
 * time never delays serving. Its complaints go to our stderr.
 */
static void check_networks(uv_loop_t *loop, berth_engine_t *e, const char *config_path)
{
    const char *cli = getenv("BERTH_CLI_PATH");
    const char *argv[10];
    uv_process_options_t o = { 0 };
    uv_stdio_container_t stdio[3];
    uv_process_t *p = calloc(1, sizeof(*p));
    size_t n = 0;

    if (!p)
        return;
    argv[n++] = cli && *cli ? cli : BERTH_BINDIR "/berth";
    argv[n++] = "--root";
    argv[n++] = berth_engine_root(e);
    argv[n++] = "--runroot";
    argv[n++] = berth_engine_runroot(e);
    if (config_path) {
        argv[n++] = "--config";
        argv[n++] = config_path;
    }
    argv[n++] = "network";
    argv[n++] = "check";
    argv[n] = NULL;
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = stdio[2].flags = UV_INHERIT_FD;
    stdio[1].data.fd = stdio[2].data.fd = 2;
    o.file = argv[0];
    o.args = (char **)argv;
    o.exit_cb = on_check_exit;
    o.stdio = stdio;
    o.stdio_count = 3;
    if (uv_spawn(loop, p, &o) < 0)
        free(p);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'H' },
        { "root", required_argument, NULL, 'r' },
        { "runroot", required_argument, NULL, 'R' },
        { "config", required_argument, NULL, 'c' },
        { "tlscacert", required_argument, NULL, 'A' },
        { "tlscert", required_argument, NULL, 'C' },
        { "tlskey", required_argument, NULL, 'K' },
        { "tlsverify", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
    int any_tcp = 0;
    berth_engine_opts_t opts = { .struct_size = sizeof(opts) };
    const char *hosts[MAX_HOSTS];
    size_t n_hosts = 0;
    berth_engine_t *e = NULL;
    berth_err_t err = { 0 };
    bd_server_t *s = NULL;
    bd_supervisor_t *sup = NULL;
    uv_signal_t sigterm, sigint;
    uv_loop_t loop;
    struct group *g;
    gid_t gid;
    json_t *cfg = NULL, *api, *tls;
    int opt, r;

    while ((opt = getopt_long(argc, argv, "H:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'H':
            if (n_hosts == MAX_HOSTS) {
                fprintf(stderr, "berthd: at most %d -H addresses\n", MAX_HOSTS);
                return 2;
            }
            hosts[n_hosts++] = optarg;
            break;
        case 'r':
            opts.root = optarg;
            break;
        case 'R':
            opts.runroot = optarg;
            break;
        case 'c':
            opts.config_path = optarg;
            break;
        case 'A':
            tls_ca = optarg;
            break;
        case 'C':
            tls_cert = optarg;
            break;
        case 'K':
            tls_key = optarg;
            break;
        case 'V':
            /* dockerd's flag; berthd verifies client certificates on every TCP listener. */
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "berthd: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    bd_api_set_config(opts.config_path);
    if ((r = berth_engine_open(&opts, &e, &err)) < 0) {
        fprintf(stderr, "berthd: %s\n", err.msg);
        return 1;
    }
    /* A create killed between its snapshot and its record (a berthd SIGKILLed under load) left a
     * snapshot no record names. */
    {
        berth_err_t serr = { 0 };
        unsigned n = 0;
        r = berth_container_storage_sweep(e, &n, &serr);
        if (r < 0 && r != -ENOTSUP && r != -ENOENT)
            fprintf(stderr, "berthd: sweeping container snapshots: %s\n", serr.msg);
        else if (r == 0 && n)
            fprintf(stderr, "berthd: removed %u container snapshot%s no record names\n", n,
                    n == 1 ? "" : "s");
    }
    /* berth.json's "api" section serves for what the command line leaves unsaid. */
    if (!(cfg = berth_engine_config(e))) {
        fprintf(stderr, "berthd: out of memory\n");
        berth_engine_close(e);
        return 1;
    }
    api = json_object_get(cfg, "api");
    tls = json_object_get(api, "tls");
    if (!tls_ca && !tls_cert && !tls_key) {
        tls_ca = json_string_value(json_object_get(tls, "ca"));
        tls_cert = json_string_value(json_object_get(tls, "cert"));
        tls_key = json_string_value(json_object_get(tls, "key"));
    }
    if (n_hosts == 0) {
        json_t *v;
        size_t i;
        json_array_foreach (json_object_get(api, "listeners"), i, v) {
            if (n_hosts == MAX_HOSTS) {
                fprintf(stderr, "berthd: at most %d listeners\n", MAX_HOSTS);
                goto fail_quiet;
            }
            if (json_is_string(v))
                hosts[n_hosts++] = json_string_value(v);
        }
    }
    for (size_t i = 0; i < n_hosts; i++) {
        if (strncmp(hosts[i], "tcp://", 6) == 0) {
            any_tcp = 1;
            continue;
        }
        if (strncmp(hosts[i], "unix://", 7) != 0 || hosts[i][7] != '/') {
            fprintf(stderr,
                    "berthd: cannot listen on %s: give unix:///absolute/path or "
                    "tcp://HOST:PORT\n",
                    hosts[i]);
            goto fail_quiet;
        }
    }
    /* Mutual TLS, all of it, or no TCP at all. */
    if ((any_tcp || tls_ca || tls_cert || tls_key) && (!tls_ca || !tls_cert || !tls_key)) {
        fprintf(stderr, "berthd: %s: %s is missing\n",
                any_tcp ? "a tcp:// address is served only with mutual TLS"
                        : "mutual TLS needs --tlscacert, --tlscert and --tlskey",
                !tls_ca     ? "--tlscacert"
                : !tls_cert ? "--tlscert"
                            : "--tlskey");
        goto fail_quiet;
    }
    uv_loop_init(&loop);
    if ((r = bd_server_new(&loop, bd_api_handle, e, &s, &err)) < 0)
        goto fail;
    if (tls_ca && tls_cert && tls_key &&
        (r = bd_server_set_tls(s, tls_ca, tls_cert, tls_key, &err)) < 0)
        goto fail;
    g = getgrnam("berth");
    gid = g ? g->gr_gid : (gid_t)-1;
    for (size_t i = 0; i < n_hosts; i++) {
        if (strncmp(hosts[i], "tcp://", 6) == 0)
            r = bd_server_listen_tcp(s, hosts[i] + 6, &err);
        else
            r = bd_server_listen_unix(s, hosts[i] + 7, 0660, gid, &err);
        if (r < 0)
            goto fail;
        fprintf(stderr, "berthd: listening on %s\n", hosts[i]);
    }
    if ((r = bd_supervisor_new(&loop, e, &sup)) < 0) {
        berth_err_set(&err, r, "cannot start the supervisor: %s", strerror(-r));
        goto fail;
    }
    bd_api_set_supervisor(sup);
    check_networks(&loop, e, opts.config_path);
    bd_server_set_spool(s, berth_engine_runroot(e), bd_api_spool_wanted);
    uv_signal_init(&loop, &sigterm);
    uv_signal_init(&loop, &sigint);
    sigterm.data = sigint.data = s;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    json_decref(cfg);
    berth_engine_close(e);
    return 0;

fail:
    fprintf(stderr, "berthd: %s\n", err.msg);
    if (s)
        bd_server_close(s);
    /* The closes finish, so the loop frees what it holds. */
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
fail_quiet:
    json_decref(cfg);
    berth_engine_close(e);
    return 1;
}
