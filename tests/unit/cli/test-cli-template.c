/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The --format templates of the inspect commands (core/cli/cli-template.c):
 * docker's usual formats over inspect-shaped JSON, Go's printing of values,
 * the control structures, the functions, and the one-line refusals of bad
 * templates and bad uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli-template.h"

static const char doc[] =
    "{\"Id\": \"abc123\", \"Name\": \"/web\","
    " \"State\": {\"Status\": \"running\", \"Running\": true, \"Pid\": 4242, \"ExitCode\": 0,"
    "            \"Error\": \"\", \"Health\": null},"
    " \"Config\": {\"Env\": [\"PATH=/bin\", \"FOO=bar\"], \"Cmd\": [\"sleep\", \"100\"],"
    "            \"Labels\": {\"tier\": \"front\", \"app\": \"shop\"}, \"Ratio\": 0.5,"
    "            \"Big\": 1700000000},"
    " \"Mounts\": [{\"Source\": \"/srv\", \"Destination\": \"/data\", \"RW\": true},"
    "             {\"Source\": \"/etc/x\", \"Destination\": \"/x\", \"RW\": false}],"
    " \"NetworkSettings\": {\"Networks\": {\"front\": {\"IPAddress\": \"10.0.0.2\"},"
    "                                       \"back\": {\"IPAddress\": \"10.1.0.2\"}},"
    "                       \"Ports\": {\"80/tcp\": [{\"HostIp\": \"127.0.0.1\","
    "                                              \"HostPort\": \"8080\"}]}}}";

static json_t *data;

static void renders(const char *tmpl, const char *want)
{
    char err[256] = "";
    char *got = cli_template_render(tmpl, data, err, sizeof(err));

    if (!got)
        fail_msg("%s: refused: %s", tmpl, err);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", tmpl, got, want);
    free(got);
}

static void refuses(const char *tmpl, const char *want_in_err)
{
    char err[256] = "";
    char *got = cli_template_render(tmpl, data, err, sizeof(err));

    if (got)
        fail_msg("%s: rendered \"%s\", want a refusal", tmpl, got);
    if (!strstr(err, want_in_err) || strncmp(err, "template: ", 10) != 0 || strchr(err, '\n'))
        fail_msg("%s: error \"%s\", want one line with \"%s\"", tmpl, err, want_in_err);
}

static void test_fields_and_values(void **state)
{
    (void)state;
    renders("{{.Id}}", "abc123");
    renders("pid {{.State.Pid}} of {{.Name}}", "pid 4242 of /web");
    renders("{{.State.Running}} {{.State.ExitCode}}", "true 0");
    renders("{{.Config.Env}}", "[PATH=/bin FOO=bar]");
    renders("{{.Config.Labels}}", "map[app:shop tier:front]");
    renders("{{.Config.Ratio}} {{.Config.Big}}", "0.5 1700000000");
    renders("{{.State.Health}}", "<nil>");
    renders("{{.Nope}} {{.State.Nope.Deeper}}", "<no value> <no value>");
    renders("{{.}}",
            "map[Config:map[Big:1700000000 Cmd:[sleep 100] Env:[PATH=/bin FOO=bar] "
            "Labels:map[app:shop tier:front] Ratio:0.5] Id:abc123 Mounts:[map[Destination:/data "
            "RW:true Source:/srv] map[Destination:/x RW:false Source:/etc/x]] Name:/web "
            "NetworkSettings:map[Networks:map[back:map[IPAddress:10.1.0.2] "
            "front:map[IPAddress:10.0.0.2]] Ports:map[80/tcp:[map[HostIp:127.0.0.1 "
            "HostPort:8080]]]] State:map[Error: ExitCode:0 Health:<nil> Pid:4242 "
            "Running:true Status:running]]");
    renders("no actions at all", "no actions at all");
    renders("{{\"a\\tb\\n\"}}{{42}} {{-1}} {{true}}", "a\tb\n42 -1 true");
}

static void test_docker_formats(void **state)
{
    (void)state;
    renders("{{json .Config.Env}}", "[\"PATH=/bin\",\"FOO=bar\"]");
    renders("{{json .Nope}}", "null");
    renders("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "10.1.0.2 10.0.0.2 ");
    renders(
        "{{range $name, $net := .NetworkSettings.Networks}}{{$name}}={{$net.IPAddress}};{{end}}",
        "back=10.1.0.2;front=10.0.0.2;");
    renders("{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}", "8080");
    renders("{{index .Config.Labels \"tier\"}}", "front");
    renders("{{index .Config.Labels \"none\"}}", "<no value>");
    renders("{{index .Config.Cmd 1}}", "100");
    renders("{{range $i, $m := .Mounts}}{{$i}}:{{$m.Source}}->{{.Destination}} {{end}}",
            "0:/srv->/data 1:/etc/x->/x ");
    renders("{{range .Mounts}}{{if .RW}}rw{{else}}ro{{end}} {{end}}", "rw ro ");
    renders("{{range .Config.Nope}}x{{else}}none{{end}}", "none");
    renders("{{with .State}}{{.Status}}{{end}}|{{with .State.Error}}err{{else}}no error{{end}}",
            "running|no error");
    renders("{{range .Mounts}}{{$.Name}} {{end}}", "/web /web ");
}

static void test_trim_comments_control(void **state)
{
    (void)state;
    renders("a   {{- .Id -}}   b", "aabc123b");
    renders("x{{/* a comment */}}y{{- /* trimmed */ -}}  z", "xyz");
    renders("{{if eq .State.Status \"exited\"}}E{{else if .State.Running}}R{{else}}?{{end}}", "R");
    renders("{{if and .State.Running (eq .State.Pid 4242)}}yes{{end}}", "yes");
    renders("{{if or .State.Error .Nope}}a{{else}}b{{end}}", "b");
    renders("{{if not .State.Error}}clean{{end}}", "clean");
    renders("{{if ne .State.Pid 1}}ne{{end}}{{if lt .State.Pid 5000}}lt{{end}}"
            "{{if ge .State.Pid 4242}}ge{{end}}{{if gt 1 2}}gt{{end}}",
            "neltge");
}

static void test_functions(void **state)
{
    (void)state;
    renders("{{len .Config.Env}} {{len .Config.Labels}} {{len .Name}}", "2 2 4");
    renders("{{upper .State.Status}} {{lower \"ABC\"}}", "RUNNING abc");
    renders("{{.Name | upper}}", "/WEB");
    renders("{{join .Config.Cmd \" \"}}", "sleep 100");
    renders("{{range split \"a,b,c\" \",\"}}[{{.}}]{{end}}", "[a][b][c]");
    renders("{{print .State.Pid .State.ExitCode \"s\" \"t\"}}", "4242 0st");
    renders("{{println .Id .State.Pid}}", "abc123 4242\n");
    renders("{{printf \"%s has pid %d (%v) %q %%\" .Name .State.Pid .State.Running .Id}}",
            "/web has pid 4242 (true) \"abc123\" %");
}

static void test_refusals(void **state)
{
    (void)state;
    refuses("{{.Id", "unclosed action");
    refuses("{{end}}", "unexpected {{end}}");
    refuses("{{if .Id}}x", "without {{end}}");
    refuses("{{nosuch .Id}}", "function \"nosuch\" not defined");
    refuses("{{\"open}}", "unterminated string");
    refuses("{{.Id .Name}}", "non-function");
    refuses("{{index .Config.Cmd 5}}", "index out of range: 5");
    refuses("{{index .Config.Labels 1}}", "string key");
    refuses("{{range .Id}}{{end}}", "range can't iterate");
    refuses("{{.Config.Env.Foo}}", "can't evaluate field Foo");
    refuses("{{$nope}}", "undefined variable \"$nope\"");
    refuses("{{len .State.Pid}}", "len of a value");
    refuses("{{}}", "missing value");
    refuses("{{lt .Id 3}}", "incompatible");
    /* The syntax alone, as the commands check it before any work. */
    {
        char err[256];
        assert_int_equal(
            cli_template_check("{{.State.Pid}} {{range .Mounts}}x{{end}}", err, sizeof(err)), 0);
        assert_int_equal(cli_template_check("{{range .Mounts}}", err, sizeof(err)), -1);
        assert_non_null(strstr(err, "without {{end}}"));
    }
}

static int setup(void **state)
{
    (void)state;
    data = json_loads(doc, JSON_PRESERVE_ORDER, NULL);
    return data ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(data);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_values),
        cmocka_unit_test(test_docker_formats),
        cmocka_unit_test(test_trim_comments_control),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
