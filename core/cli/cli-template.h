/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --format templates, as the docker CLI takes them (Go's text/template),
 * over the JSON that inspect prints: `{{.State.Pid}}`,
 * `{{range .Mounts}}{{.Source}} {{end}}`,
 * `{{(index .NetworkSettings.Ports "80/tcp" 0).HostPort}}`, `{{json .Config}}`.
 *
 * The subset: text; actions {{PIPELINE}}, with {{- and -}} trimming the
 * white space around them, and comments {{/​* ... *​/}}; if / else if / else,
 * range (with `$v :=` or `$k, $v :=`, and else), with (and else), end;
 * pipelines of commands joined by `|` (the value goes in as the last
 * argument); operands `.`, `.A.B`, `$`, `$x`, `$x.A`, "strings" (Go's
 * escapes \n \t \" \\), numbers, true, false, and a parenthesised
 * pipeline that may be followed by fields; the functions json, index, len,
 * upper, lower, join, split, print, println, printf (%s %d %v %q %%), eq,
 * ne, lt, le, gt, ge, not, and, or.
 *
 * Values print as Go prints the JSON the docker CLI decodes: strings as
 * they are, whole numbers without a fraction, arrays as [a b], objects as
 * map[k:v] with sorted keys, null as <nil>, a field that is not there as
 * <no value>.
 */
#ifndef BERTH_CLI_TEMPLATE_H
#define BERTH_CLI_TEMPLATE_H

#include <stddef.h>

#include <jansson.h>

/*
 * Render @tmpl over @data (the template's dot). Returns the text
 * (malloc'ed, the caller frees), or NULL with a one-line reason in @err
 * ("template: unexpected {{end}}", "template: index of a string").
 */
char *cli_template_render(const char *tmpl, json_t *data, char *err, size_t errlen);

/*
 * Check @tmpl's syntax without data: 0, or -1 with the reason in @err.
 * A front end checks before doing any work, as docker does.
 */
int cli_template_check(const char *tmpl, char *err, size_t errlen);

#endif /* BERTH_CLI_TEMPLATE_H */
