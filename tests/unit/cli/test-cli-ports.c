/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The networking value parsers of `create` and `run` (core/cli/cli-ports.c):
 * -p in all of docker's forms, into the exact PortBindings and ExposedPorts
 * JSON the docker CLI sends; refusals with a one-line reason; --expose,
 * --add-host, and the lines `berth port` prints.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

/* Parse the -p values (NULL-terminated); compare both objects with the JSON wanted. */
static void publish_is(const char *const *specs, const char *want_bindings,
                       const char *want_exposed)
{
    json_t *b = json_object(), *x = json_object();
    json_t *wb = json_loads(want_bindings, 0, NULL), *wx = json_loads(want_exposed, 0, NULL);
    char msg[256] = "";

    assert_non_null(wb);
    assert_non_null(wx);
    for (const char *const *s = specs; *s; s++)
        if (cli_parse_publish(*s, b, x, msg, sizeof(msg)) != 0)
            fail_msg("-p %s refused: %s", *s, msg);
    if (!json_equal(b, wb)) {
        char *got = json_dumps(b, JSON_SORT_KEYS);
        fail_msg("-p %s: bindings %s, want %s", specs[0], got, want_bindings);
    }
    if (!json_equal(x, wx)) {
        char *got = json_dumps(x, JSON_SORT_KEYS);
        fail_msg("-p %s: exposed %s, want %s", specs[0], got, want_exposed);
    }
    json_decref(b);
    json_decref(x);
    json_decref(wb);
    json_decref(wx);
}

static void one_is(const char *spec, const char *want_bindings, const char *want_exposed)
{
    const char *specs[] = { spec, NULL };
    publish_is(specs, want_bindings, want_exposed);
}

/* -p @spec is refused with a message containing @why. */
static void publish_refused(const char *spec, const char *why)
{
    json_t *b = json_object(), *x = json_object();
    char msg[256] = "";

    if (cli_parse_publish(spec, b, x, msg, sizeof(msg)) != -1)
        fail_msg("-p '%s' was accepted", spec);
    if (!strstr(msg, why))
        fail_msg("-p '%s': message \"%s\" lacks \"%s\"", spec, msg, why);
    if (strchr(msg, '\n'))
        fail_msg("-p '%s': message on more than one line", spec);
    json_decref(b);
    json_decref(x);
}

static void test_cli_ports_publish_forms(void **state)
{
    /* The shapes the docker CLI sends (docs: what `docker create -p` puts in the body). */
    one_is("127.0.0.1:8080:80",
           "{\"80/tcp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"8080\"}]}",
           "{\"80/tcp\": {}}");
    one_is("9000", "{\"9000/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"\"}]}",
           "{\"9000/tcp\": {}}");
    one_is("8080:80", "{\"80/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"8080\"}]}",
           "{\"80/tcp\": {}}");
    one_is("127.0.0.1::80", "{\"80/tcp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"\"}]}",
           "{\"80/tcp\": {}}");
    one_is("53:53/udp", "{\"53/udp\": [{\"HostIp\": \"\", \"HostPort\": \"53\"}]}",
           "{\"53/udp\": {}}");
    one_is("53:53/UDP", "{\"53/udp\": [{\"HostIp\": \"\", \"HostPort\": \"53\"}]}",
           "{\"53/udp\": {}}");
    one_is("5000/sctp", "{\"5000/sctp\": [{\"HostIp\": \"\", \"HostPort\": \"\"}]}",
           "{\"5000/sctp\": {}}");
    one_is("[::1]:8080:80", "{\"80/tcp\": [{\"HostIp\": \"::1\", \"HostPort\": \"8080\"}]}",
           "{\"80/tcp\": {}}");
    one_is("[::]::80", "{\"80/tcp\": [{\"HostIp\": \"::\", \"HostPort\": \"\"}]}",
           "{\"80/tcp\": {}}");
    one_is(":8080:80", "{\"80/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"8080\"}]}",
           "{\"80/tcp\": {}}");
    one_is("0:80", "{\"80/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"0\"}]}", "{\"80/tcp\": {}}");
}

static void test_cli_ports_publish_ranges(void **state)
{
    one_is("8000-8001:80-81",
           "{\"80/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"8000\"}],"
           " \"81/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"8001\"}]}",
           "{\"80/tcp\": {}, \"81/tcp\": {}}");
    one_is("127.0.0.1::80-82/udp",
           "{\"80/udp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"\"}],"
           " \"81/udp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"\"}],"
           " \"82/udp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"\"}]}",
           "{\"80/udp\": {}, \"81/udp\": {}, \"82/udp\": {}}");
    /* A host range for one container port: the engine picks one in it. */
    one_is("8000-8010:80", "{\"80/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"8000-8010\"}]}",
           "{\"80/tcp\": {}}");
}

static void test_cli_ports_publish_several(void **state)
{
    /* The same container port twice (two host addresses), and tcp and udp apart. */
    const char *specs[] = { "127.0.0.1:8080:80", "[::1]:8080:80", "53:53/udp", "53:53", NULL };
    publish_is(specs,
               "{\"80/tcp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"8080\"},"
               "              {\"HostIp\": \"::1\", \"HostPort\": \"8080\"}],"
               " \"53/udp\": [{\"HostIp\": \"\", \"HostPort\": \"53\"}],"
               " \"53/tcp\": [{\"HostIp\": \"\", \"HostPort\": \"53\"}]}",
               "{\"80/tcp\": {}, \"53/udp\": {}, \"53/tcp\": {}}");
}

static void test_cli_ports_publish_refused(void **state)
{
    publish_refused("", "no container port");
    publish_refused("8080:", "no container port");
    publish_refused("127.0.0.1:8080:", "no container port");
    publish_refused("0", "bad container port");
    publish_refused("65536", "bad container port");
    publish_refused("http", "bad container port");
    publish_refused("80x", "bad container port");
    publish_refused("-80", "bad container port");
    publish_refused("81-80", "bad container port");
    publish_refused("99999:80", "bad host port");
    publish_refused("x:80", "bad host port");
    publish_refused("80/tcpx", "unknown protocol");
    publish_refused("80/", "unknown protocol");
    publish_refused("300.1.1.1:80:80", "not an IPv4 address");
    publish_refused("localhost:80:80", "not an IPv4 address");
    publish_refused("::1:80:80", "brackets");
    publish_refused("[::1:80:80", "bad [IPv6] address");
    publish_refused("[zz]:80:80", "not an IPv6 address");
    publish_refused("[::1]:80", "want [IP]:HOSTPORT:CONTAINERPORT");
    publish_refused("8000-8002:80-81", "differ in size");
    publish_refused("8000:80-81", "differ in size");
    {
        char big[400];
        memset(big, '1', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        publish_refused(big, "too long");
    }
}

static void test_cli_ports_expose(void **state)
{
    json_t *x = json_object(), *want;
    char msg[256] = "";

    assert_int_equal(cli_parse_expose("80", x, msg, sizeof(msg)), 0);
    assert_int_equal(cli_parse_expose("53/udp", x, msg, sizeof(msg)), 0);
    assert_int_equal(cli_parse_expose("7000-7002", x, msg, sizeof(msg)), 0);
    want = json_loads("{\"80/tcp\": {}, \"53/udp\": {}, \"7000/tcp\": {}, \"7001/tcp\": {},"
                      " \"7002/tcp\": {}}",
                      0, NULL);
    assert_true(json_equal(x, want));
    assert_int_equal(cli_parse_expose("0", x, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "want PORT"));
    assert_int_equal(cli_parse_expose("80/icmp", x, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "unknown protocol"));
    assert_int_equal(cli_parse_expose("a-b", x, msg, sizeof(msg)), -1);
    json_decref(x);
    json_decref(want);
}

static void test_cli_ports_add_host(void **state)
{
    char out[256], msg[256];

    assert_int_equal(cli_parse_add_host("db:10.0.0.5", out, sizeof(out), msg, sizeof(msg)), 0);
    assert_string_equal(out, "db:10.0.0.5");
    assert_int_equal(cli_parse_add_host("db=10.0.0.5", out, sizeof(out), msg, sizeof(msg)), 0);
    assert_string_equal(out, "db:10.0.0.5");
    assert_int_equal(cli_parse_add_host("v6:::1", out, sizeof(out), msg, sizeof(msg)), 0);
    assert_string_equal(out, "v6:::1");
    assert_int_equal(cli_parse_add_host("v6=[fe80::1]", out, sizeof(out), msg, sizeof(msg)), 0);
    assert_string_equal(out, "v6:fe80::1");
    assert_int_equal(cli_parse_add_host("gw:host-gateway", out, sizeof(out), msg, sizeof(msg)), 0);
    assert_string_equal(out, "gw:host-gateway");
    assert_int_equal(cli_parse_add_host("nocolon", out, sizeof(out), msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "want HOST:IP"));
    assert_int_equal(cli_parse_add_host(":1.2.3.4", out, sizeof(out), msg, sizeof(msg)), -1);
    assert_int_equal(cli_parse_add_host("bad name:1.2.3.4", out, sizeof(out), msg, sizeof(msg)),
                     -1);
    assert_int_equal(cli_parse_add_host("db:1.2.3", out, sizeof(out), msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "not an IP address"));
    assert_int_equal(cli_parse_add_host("db:", out, sizeof(out), msg, sizeof(msg)), -1);
}

static void test_cli_ports_check_ip(void **state)
{
    char msg[256];
    assert_int_equal(cli_check_ip("--ip", "172.18.0.9", AF_INET, msg, sizeof(msg)), 0);
    assert_int_equal(cli_check_ip("--ip", "172.18.0.300", AF_INET, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "invalid --ip '172.18.0.300': not an IPv4 address");
    assert_int_equal(cli_check_ip("--ip", "::1", AF_INET, msg, sizeof(msg)), -1);
    assert_int_equal(cli_check_ip("--dns", "::1", AF_INET6, NULL, 0), 0);
}

/* cli_port_print's output for @ports_json and @want, compared with @expect; returns its result. */
static int port_lines(const char *ports_json, const char *want, const char *expect, char *msg,
                      size_t len)
{
    json_t *ports = json_loads(ports_json, JSON_DECODE_ANY, NULL);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    int r;

    assert_non_null(f);
    r = cli_port_print(ports, want, f, msg, len);
    fclose(f);
    if (strcmp(buf, expect) != 0)
        fail_msg("ports %s want %s: printed \"%s\", want \"%s\"", ports_json, want ? want : "(all)",
                 buf, expect);
    free(buf);
    json_decref(ports);
    return r;
}

static void test_cli_ports_port_lines(void **state)
{
    const char *ports = "{\"8080/tcp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": \"40001\"}],"
                        " \"80/tcp\": [{\"HostIp\": \"0.0.0.0\", \"HostPort\": \"32768\"},"
                        "              {\"HostIp\": \"::\", \"HostPort\": \"32768\"}],"
                        " \"53/udp\": [{\"HostIp\": \"\", \"HostPort\": \"5353\"}],"
                        " \"9/tcp\": null, \"443/tcp\": []}";
    char msg[256] = "";

    /* Sorted by number (80 before 8080, which a string sort would not give). */
    assert_int_equal(port_lines(ports, NULL,
                                "53/udp -> 0.0.0.0:5353\n"
                                "80/tcp -> 0.0.0.0:32768\n"
                                "80/tcp -> [::]:32768\n"
                                "8080/tcp -> 127.0.0.1:40001\n",
                                msg, sizeof(msg)),
                     4);
    assert_int_equal(port_lines(ports, "80", "0.0.0.0:32768\n[::]:32768\n", msg, sizeof(msg)), 2);
    assert_int_equal(port_lines(ports, "80/tcp", "0.0.0.0:32768\n[::]:32768\n", msg, sizeof(msg)),
                     2);
    assert_int_equal(port_lines(ports, "53/udp", "0.0.0.0:5353\n", msg, sizeof(msg)), 1);
    /* 53/tcp is not 53/udp; 9 is exposed but not published. */
    assert_int_equal(port_lines(ports, "53", "", msg, sizeof(msg)), -1);
    assert_string_equal(msg, "no public port '53/tcp' published");
    assert_int_equal(port_lines(ports, "9", "", msg, sizeof(msg)), -1);
    assert_int_equal(port_lines(ports, "http", "", msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "invalid port"));
    /* No ports at all: nothing to print, no error. */
    assert_int_equal(port_lines("{}", NULL, "", msg, sizeof(msg)), 0);
    assert_int_equal(port_lines("null", NULL, "", msg, sizeof(msg)), 0);
}

/* cli_ports_column() of @json (a listing's Ports) equals @expect. */
static void ports_column_is(const char *json, size_t len, const char *expect)
{
    json_t *ports = json_loads(json, JSON_DECODE_ANY, NULL);
    char buf[256];

    assert_non_null(ports);
    assert_true(len <= sizeof(buf));
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(cli_ports_column(ports, buf, len), 0);
    assert_string_equal(buf, expect);
    json_decref(ports);
}

static void test_cli_ports_column(void **state)
{
    const char *mixed =
        "[{\"PrivatePort\": 53, \"Type\": \"udp\"},"
        " {\"IP\": \"127.0.0.1\", \"PrivatePort\": 80, \"PublicPort\": 8080, \"Type\": \"tcp\"},"
        " {\"IP\": \"0.0.0.0\", \"PrivatePort\": 82, \"PublicPort\": 8002, \"Type\": \"tcp\"},"
        " {\"IP\": \"0.0.0.0\", \"PrivatePort\": 81, \"PublicPort\": 8001, \"Type\": \"tcp\"},"
        " {\"IP\": \"::\", \"PrivatePort\": 81, \"PublicPort\": 8001, \"Type\": \"tcp\"},"
        " {\"PrivatePort\": 9000, \"Type\": \"tcp\"}, {\"PrivatePort\": 9001, \"Type\": \"tcp\"},"
        " {\"IP\": \"0.0.0.0\", \"PrivatePort\": 83, \"PublicPort\": 9999, \"Type\": \"tcp\"}]";
    (void)state;

    ports_column_is("[]", 256, "");
    ports_column_is("null", 256, "");
    ports_column_is("[{\"PrivatePort\": 80, \"Type\": \"tcp\"}]", 256, "80/tcp");
    /*
     * Published first; consecutive ports on both sides as one range, but not
     * 83 (its host port does not follow) nor the IPv6 binding (another address).
     */
    ports_column_is(mixed, 256,
                    "0.0.0.0:8001-8002->81-82/tcp, 0.0.0.0:9999->83/tcp, "
                    "127.0.0.1:8080->80/tcp, [::]:8001->81/tcp, 53/udp, 9000-9001/tcp");
    /* Cut to fit, always terminated. */
    ports_column_is(mixed, 12, "0.0.0.0:800");
    ports_column_is(mixed, 1, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_ports_publish_forms),
        cmocka_unit_test(test_cli_ports_column),
        cmocka_unit_test(test_cli_ports_publish_ranges),
        cmocka_unit_test(test_cli_ports_publish_several),
        cmocka_unit_test(test_cli_ports_publish_refused),
        cmocka_unit_test(test_cli_ports_expose),
        cmocka_unit_test(test_cli_ports_add_host),
        cmocka_unit_test(test_cli_ports_check_ip),
        cmocka_unit_test(test_cli_ports_port_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
