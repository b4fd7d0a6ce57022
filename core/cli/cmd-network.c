/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `network` command group as docker has it: ls, create, rm, inspect,
 * connect, disconnect and prune, over berth_network_*() (berth/engine.h).
 * Output follows the docker CLI's, so scripts written for one work with
 * the other; the engine judges names, subnets and conflicts, and its
 * message is what the user sees, on one line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char ls_usage[] =
    "Usage: berth %s [OPTIONS]\n"
    "\n"
    "List networks.\n"
    "\n"
    "Options:\n"
    "  -q, --quiet          only print the ids\n"
    "  -f, --filter K=V     name=PART, id=PREFIX, driver=D, label=KEY[=VALUE],\n"
    "                       type=builtin|custom, dangling=true|false\n"
    "      --no-trunc       print whole ids\n"
    "      --format FMT     table (default) or json\n"
    "  -h, --help           show this help\n";

static const char create_usage[] =
    "Usage: berth %s [OPTIONS] NAME\n"
    "\n"
    "Create a network and print its id. Without --subnet, one is taken from the\n"
    "pool 172.18.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/20 steps.\n"
    "\n"
    "Options:\n"
    "  -d, --driver DRIVER    network driver (default from the config: cni; bridge means it)\n"
    "      --subnet CIDR      the network's IPv4 subnet, e.g. 10.7.0.0/24\n"
    "      --gateway IP       the gateway's address in the subnet (default: its first)\n"
    "      --ip-range CIDR    hand out container addresses from this part of the subnet\n"
    "      --internal         no route out of the network\n"
    "      --label KEY=VALUE  set a label\n"
    "  -o, --opt KEY=VALUE    a driver option\n"
    "  -h, --help             show this help\n";

static const char rm_usage[] = "Usage: berth %s [OPTIONS] NETWORK [NETWORK...]\n"
                               "\n"
                               "Remove networks. A network a container refers to (even a\n"
                               "stopped one) is refused, and so are bridge, host and none.\n"
                               "\n"
                               "Options:\n"
                               "  -f, --force  no error for a network that does not exist\n"
                               "  -h, --help   show this help\n";

static const char inspect_usage[] =
    "Usage: berth network inspect [OPTIONS] NETWORK [NETWORK...]\n"
    "\n"
    "Show networks as a JSON array, in the shape docker uses.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  a template for each ({{.IPAM.Config}}), or json\n"
    "  -h, --help           show this help\n";

static const char connect_usage[] =
    "Usage: berth %s [OPTIONS] NETWORK CONTAINER\n"
    "\n"
    "Connect a container to a network: now when it runs, else when it next starts.\n"
    "\n"
    "Options:\n"
    "      --ip IP       the container's IPv4 address on the network\n"
    "      --alias NAME  another name the container has on the network\n"
    "  -h, --help        show this help\n";

static const char disconnect_usage[] = "Usage: berth %s [OPTIONS] NETWORK CONTAINER\n"
                                       "\n"
                                       "Disconnect a container from a network.\n"
                                       "\n"
                                       "Options:\n"
                                       "  -f, --force  force the container to disconnect\n"
                                       "  -h, --help   show this help\n";

static const char prune_usage[] = "Usage: berth %s [OPTIONS]\n"
                                  "\n"
                                  "Remove the user networks no container refers to.\n"
                                  "\n"
                                  "Options:\n"
                                  "      --filter K=V   label=KEY[=VALUE] or label!=KEY[=VALUE]\n"
                                  "  -f, --force        don't ask for confirmation\n"
                                  "  -h, --help         show this help\n";

/* K=V as Docker's filter object {"K": {"V": true}}. */
static int add_filter(json_t *filters, const char *cmd, const char *text)
{
    const char *eq = strchr(text, '=');
    char key[64];
    json_t *vals;

    if (!eq || eq == text || (size_t)(eq - text) >= sizeof(key)) {
        cli_error("%s: bad filter '%s': want KEY=VALUE", cmd, text);
        return -1;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(eq - text), text);
    /* "label!=x" arrives as key "label!" */
    vals = json_object_get(filters, key);
    if (!vals) {
        vals = json_object();
        json_object_set_new(filters, key, vals);
    }
    json_object_set_new(vals, eq + 1, json_true());
    return 0;
}

/* KEY=VALUE (or KEY alone, value "") into object @obj; -1 (reported) for an empty KEY. */
static int add_kv(json_t *obj, const char *opt, const char *text)
{
    const char *eq = strchr(text, '=');
    size_t n = eq ? (size_t)(eq - text) : strlen(text);
    char *key;

    if (n == 0) {
        cli_error("invalid %s '%s': want KEY=VALUE", opt, text);
        return -1;
    }
    key = strndup(text, n);
    json_object_set_new(obj, key, json_string(eq ? eq + 1 : ""));
    free(key);
    return 0;
}

static int fail(const berth_err_t *err, int r)
{
    cli_error("%s", err->msg[0] ? err->msg : strerror(-r));
    return CLI_EXIT_FAIL;
}

static int unexpected(char **argv, int i)
{
    cli_error("%s: unexpected argument '%s' (see 'berth %s --help')", argv[0], argv[i], argv[0]);
    return CLI_EXIT_USAGE;
}

static int cmd_network_ls(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_NO_TRUNC };
    static const struct option longopts[] = {
        { "quiet", no_argument, NULL, 'q' },
        { "filter", required_argument, NULL, 'f' },
        { "no-trunc", no_argument, NULL, OPT_NO_TRUNC },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum cli_format fmt = CLI_FORMAT_TEXT;
    json_t *filters = json_object(), *list = NULL, *v;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    struct cli_table t;
    int quiet = 0, no_trunc = 0, c, r = 0;
    size_t i;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+qf:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = 1;
            break;
        case 'f':
            if (add_filter(filters, argv[0], optarg) < 0) {
                json_decref(filters);
                return CLI_EXIT_USAGE;
            }
            break;
        case OPT_NO_TRUNC:
            no_trunc = 1;
            break;
        case OPT_FORMAT:
            if (cli_parse_format(argv[0], optarg, &fmt) < 0) {
                json_decref(filters);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            printf(ls_usage, argv[0]);
            json_decref(filters);
            return CLI_EXIT_OK;
        default:
            json_decref(filters);
            return cli_bad_option(argv, optind,
                                  optopt == 'f'          ? "--filter"
                                  : optopt == OPT_FORMAT ? "--format"
                                                         : NULL);
        }
    }
    if (optind < argc) {
        json_decref(filters);
        return unexpected(argv, optind);
    }
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(filters);
        return CLI_EXIT_FAIL;
    }
    r = berth_network_list(engine, filters, &list, &err);
    berth_engine_close(engine);
    json_decref(filters);
    if (r < 0)
        return fail(&err, r);
    if (fmt == CLI_FORMAT_JSON) {
        r = cli_print_json(list);
        json_decref(list);
        return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    cli_table_init(&t, 4);
    if (!quiet) {
        static const char *const head[] = { "NETWORK ID", "NAME", "DRIVER", "SCOPE" };
        r |= cli_table_add(&t, head);
    }
    json_array_foreach (list, i, v) {
        const char *id = json_string_value(json_object_get(v, "Id")) ?: "";
        /* docker shows 12 hex digits of an id unless told otherwise. */
        char short_id[13];
        snprintf(short_id, sizeof(short_id), "%s", id);
        if (quiet) {
            printf("%s\n", no_trunc ? id : short_id);
            continue;
        }
        const char *row[] = { no_trunc ? id : short_id,
                              json_string_value(json_object_get(v, "Name")) ?: "",
                              json_string_value(json_object_get(v, "Driver")) ?: "",
                              json_string_value(json_object_get(v, "Scope")) ?: "local" };
        r |= cli_table_add(&t, row);
    }
    if (r == 0 && !quiet)
        cli_table_print(&t, stdout);
    cli_table_release(&t);
    json_decref(list);
    if (r < 0) {
        cli_error("%s: out of memory", argv[0]);
        return CLI_EXIT_FAIL;
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Set @opt's one value into *@slot; a second one is refused (berth networks have one subnet). */
static int once(const char **slot, const char *opt, const char *value)
{
    if (*slot) {
        cli_error("network create: %s given twice (a network has one IPv4 subnet)", opt);
        return -1;
    }
    *slot = value;
    return 0;
}

static int cmd_network_create(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_SUBNET = 256, OPT_GATEWAY, OPT_IP_RANGE, OPT_INTERNAL, OPT_LABEL, OPT_IPV6 };
    static const struct option longopts[] = {
        { "driver", required_argument, NULL, 'd' },
        { "subnet", required_argument, NULL, OPT_SUBNET },
        { "gateway", required_argument, NULL, OPT_GATEWAY },
        { "ip-range", required_argument, NULL, OPT_IP_RANGE },
        { "internal", no_argument, NULL, OPT_INTERNAL },
        { "ipv6", no_argument, NULL, OPT_IPV6 },
        { "label", required_argument, NULL, OPT_LABEL },
        { "opt", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    json_t *body = json_object(), *labels = json_object(), *opts = json_object(), *out = NULL;
    const char *subnet = NULL, *gateway = NULL, *ip_range = NULL;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    char msg[256];
    int c, r;

    json_object_set_new(body, "Labels", labels);
    json_object_set_new(body, "Options", opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+d:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            json_object_set_new(body, "Driver", json_string(optarg));
            break;
        case OPT_SUBNET:
            if (once(&subnet, "--subnet", optarg) < 0)
                goto usage;
            break;
        case OPT_GATEWAY:
            if (once(&gateway, "--gateway", optarg) < 0)
                goto usage;
            if (cli_check_ip("--gateway", optarg, AF_INET, msg, sizeof(msg)) < 0) {
                cli_error("network create: %s", msg);
                goto usage;
            }
            break;
        case OPT_IP_RANGE:
            if (once(&ip_range, "--ip-range", optarg) < 0)
                goto usage;
            break;
        case OPT_INTERNAL:
            json_object_set_new(body, "Internal", json_true());
            break;
        case OPT_IPV6:
            /* Passed on so the engine's refusal is the one message about IPv6. */
            json_object_set_new(body, "EnableIPv6", json_true());
            break;
        case OPT_LABEL:
            if (add_kv(labels, "--label", optarg) < 0)
                goto usage;
            break;
        case 'o':
            if (add_kv(opts, "--opt", optarg) < 0)
                goto usage;
            break;
        case 'h':
            printf(create_usage, argv[0]);
            json_decref(body);
            return CLI_EXIT_OK;
        default:
            json_decref(body);
            return cli_bad_option(argv, optind,
                                  optopt == 'd'            ? "--driver"
                                  : optopt == 'o'          ? "--opt"
                                  : optopt == OPT_SUBNET   ? "--subnet"
                                  : optopt == OPT_GATEWAY  ? "--gateway"
                                  : optopt == OPT_IP_RANGE ? "--ip-range"
                                  : optopt == OPT_LABEL    ? "--label"
                                                           : NULL);
        }
    }
    if (optind >= argc) {
        cli_error("%s: name the network (see 'berth %s --help')", argv[0], argv[0]);
        goto usage;
    }
    if (argc - optind > 1) {
        json_decref(body);
        return unexpected(argv, optind + 1);
    }
    /* Docker's rule and message: a gateway or range belongs to a subnet given with it. */
    if ((gateway || ip_range) && !subnet) {
        cli_error("%s: every ip-range or gateway must have a corresponding subnet", argv[0]);
        goto usage;
    }
    json_object_set_new(body, "Name", json_string(argv[optind]));
    if (subnet) {
        json_t *cfg = json_pack("{s:s}", "Subnet", subnet);
        if (gateway)
            json_object_set_new(cfg, "Gateway", json_string(gateway));
        if (ip_range)
            json_object_set_new(cfg, "IPRange", json_string(ip_range));
        json_object_set_new(
            body, "IPAM",
            json_pack("{s:s, s:[o], s:{}}", "Driver", "default", "Config", cfg, "Options"));
    }
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(body);
        return CLI_EXIT_FAIL;
    }
    r = berth_network_create(engine, body, &out, &err);
    berth_engine_close(engine);
    json_decref(body);
    if (r < 0)
        return fail(&err, r);
    printf("%s\n", json_string_value(json_object_get(out, "Id")) ?: "");
    json_decref(out);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
usage:
    json_decref(body);
    return CLI_EXIT_USAGE;
}

static int cmd_network_rm(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    int force = 0, failed = 0, c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            force = 1;
            break;
        case 'h':
            printf(rm_usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, NULL);
        }
    }
    if (optind >= argc) {
        cli_error("%s: name at least one network (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    /* Each in turn, as docker does: one failure does not stop the others. */
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        int r = berth_network_remove(engine, argv[i], &err);
        if (r == -ENOENT && force)
            continue;
        if (r < 0) {
            fail(&err, r);
            failed = 1;
            continue;
        }
        printf("%s\n", argv[i]);
    }
    berth_engine_close(engine);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int cmd_network_inspect(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    json_t *all = json_array();
    const char *format;
    int failed = 0, r;

    if ((r = cli_parse_inspect_args(argc, argv, inspect_usage, &format)) != 0) {
        json_decref(all);
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    if (optind >= argc) {
        cli_error("%s: name at least one network (see 'berth %s --help')", argv[0], argv[0]);
        json_decref(all);
        return CLI_EXIT_USAGE;
    }
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(all);
        return CLI_EXIT_FAIL;
    }
    for (int i = optind; i < argc; i++) {
        berth_err_t err = { 0 };
        json_t *v = NULL;
        if ((r = berth_network_inspect(engine, argv[i], &v, &err)) < 0) {
            fail(&err, r);
            failed = 1;
            continue;
        }
        json_array_append_new(all, v);
    }
    berth_engine_close(engine);
    /* Like docker: what was found is printed even when something wasn't. */
    r = cli_print_inspect(argv[0], all, format);
    json_decref(all);
    return failed || r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* NETWORK CONTAINER, exactly: 0, or the usage exit code (reported). */
static int net_and_container(int argc, char **argv)
{
    if (argc - optind < 2) {
        cli_error("%s: name a network and a container (see 'berth %s --help')", argv[0], argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (argc - optind > 2)
        return unexpected(argv, optind + 2);
    return 0;
}

static int cmd_network_connect(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_IP = 256, OPT_ALIAS };
    static const struct option longopts[] = {
        { "ip", required_argument, NULL, OPT_IP },
        { "alias", required_argument, NULL, OPT_ALIAS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    json_t *ep = json_object(), *aliases = json_array();
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    char msg[256];
    int c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_IP:
            if (cli_check_ip("--ip", optarg, AF_INET, msg, sizeof(msg)) < 0) {
                cli_error("%s: %s", argv[0], msg);
                r = CLI_EXIT_USAGE;
                goto out;
            }
            json_object_set_new(ep, "IPAMConfig", json_pack("{s:s}", "IPv4Address", optarg));
            break;
        case OPT_ALIAS:
            json_array_append_new(aliases, json_string(optarg));
            break;
        case 'h':
            printf(connect_usage, argv[0]);
            r = CLI_EXIT_OK;
            goto out;
        default:
            r = cli_bad_option(argv, optind,
                               optopt == OPT_IP      ? "--ip"
                               : optopt == OPT_ALIAS ? "--alias"
                                                     : NULL);
            goto out;
        }
    }
    if ((r = net_and_container(argc, argv)) != 0)
        goto out;
    if (json_array_size(aliases) > 0)
        json_object_set(ep, "Aliases", aliases);
    if (cli_open_engine(g, 0, &engine) < 0) {
        r = CLI_EXIT_FAIL;
        goto out;
    }
    r = berth_network_connect(engine, argv[optind], argv[optind + 1], ep, &err);
    berth_engine_close(engine);
    r = r < 0 ? fail(&err, r) : CLI_EXIT_OK;
out:
    json_decref(aliases);
    json_decref(ep);
    return r;
}

static int cmd_network_disconnect(const struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    int force = 0, c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            force = 1;
            break;
        case 'h':
            printf(disconnect_usage, argv[0]);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option(argv, optind, NULL);
        }
    }
    if ((r = net_and_container(argc, argv)) != 0)
        return r;
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_network_disconnect(engine, argv[optind], argv[optind + 1], force, &err);
    berth_engine_close(engine);
    return r < 0 ? fail(&err, r) : CLI_EXIT_OK;
}

static int cmd_network_prune(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_FILTER = 256 };
    static const struct option longopts[] = {
        { "force", no_argument, NULL, 'f' },
        { "filter", required_argument, NULL, OPT_FILTER },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    json_t *filters = json_object(), *report = NULL, *v;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    int force = 0, c, r;
    size_t i;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            force = 1;
            break;
        case OPT_FILTER:
            if (add_filter(filters, argv[0], optarg) < 0) {
                json_decref(filters);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            printf(prune_usage, argv[0]);
            json_decref(filters);
            return CLI_EXIT_OK;
        default:
            json_decref(filters);
            return cli_bad_option(argv, optind, optopt == OPT_FILTER ? "--filter" : NULL);
        }
    }
    if (optind < argc) {
        json_decref(filters);
        return unexpected(argv, optind);
    }
    if (!force && !cli_confirm("WARNING! This will remove all custom networks not used by at "
                               "least one container.")) {
        json_decref(filters);
        return CLI_EXIT_OK;
    }
    if (cli_open_engine(g, 0, &engine) < 0) {
        json_decref(filters);
        return CLI_EXIT_FAIL;
    }
    r = berth_network_prune(engine, filters, &report, &err);
    berth_engine_close(engine);
    json_decref(filters);
    if (r < 0)
        return fail(&err, r);
    if (json_array_size(json_object_get(report, "NetworksDeleted")) > 0) {
        printf("Deleted Networks:\n");
        json_array_foreach (json_object_get(report, "NetworksDeleted"), i, v)
            printf("%s\n", json_string_value(v));
    }
    json_decref(report);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/*
 * berth network check: CNI CHECK of every running container's endpoints, as
 * berthd runs it when it starts. One line per endpoint that is not as it was
 * attached; exit 1 when there is one.
 */
static int cmd_network_check(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    json_t *failed = NULL, *v;
    size_t i;
    int r;

    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("Usage: berth %s\n\nCheck that running containers' network endpoints are as "
               "they were attached.\n",
               argv[0]);
        return CLI_EXIT_OK;
    }
    if (argc > 1)
        return unexpected(argv, 1);
    if (cli_open_engine(g, 0, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_network_check(engine, &failed, &err);
    berth_engine_close(engine);
    if (r < 0)
        return fail(&err, r);
    json_array_foreach (failed, i, v)
        cli_error("network check: container %.12s on network %s: %s",
                  json_string_value(json_object_get(v, "Container")),
                  json_string_value(json_object_get(v, "Network")),
                  json_string_value(json_object_get(v, "Error")));
    r = json_array_size(failed) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    json_decref(failed);
    return r;
}

static const struct {
    const char *name, *alias;
    cli_cmd_fn fn;
    const char *summary;
} network_cmds[] = {
    { "check", NULL, cmd_network_check, "Check running containers' endpoints (CNI CHECK)" },
    { "connect", NULL, cmd_network_connect, "Connect a container to a network" },
    { "create", NULL, cmd_network_create, "Create a network" },
    { "disconnect", NULL, cmd_network_disconnect, "Disconnect a container from a network" },
    { "inspect", NULL, cmd_network_inspect, "Show networks in detail (JSON)" },
    { "ls", "list", cmd_network_ls, "List networks" },
    { "prune", NULL, cmd_network_prune, "Remove unused networks" },
    { "rm", "remove", cmd_network_rm, "Remove networks" },
};

int cmd_network(const struct cli_globals *g, int argc, char **argv)
{
    char name[64];
    size_t n = sizeof(network_cmds) / sizeof(network_cmds[0]);

    if (argc < 2) {
        cli_error("network: name a command (see 'berth network --help')");
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        printf("Usage: berth network COMMAND [ARG...]\n\nManage networks.\n\nCommands:\n");
        for (size_t i = 0; i < n; i++)
            printf("  %-10s %s\n", network_cmds[i].name, network_cmds[i].summary);
        printf("\nRun 'berth network COMMAND --help' for more about a command.\n");
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], network_cmds[i].name) != 0 &&
            !(network_cmds[i].alias && strcmp(argv[1], network_cmds[i].alias) == 0))
            continue;
        /* argv[1] becomes "network NAME", so messages name the command in full. */
        snprintf(name, sizeof(name), "network %s", network_cmds[i].name);
        argv[1] = name;
        return network_cmds[i].fn(g, argc - 1, argv + 1);
    }
    cli_error("network: unknown command '%s' (see 'berth network --help')", argv[1]);
    return CLI_EXIT_USAGE;
}
