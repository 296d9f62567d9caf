"""DuckDB macros that read OTLP span attributes and GenAI / OpenInference messages (parsing stays in SQL).

Attributes are kept as a list of {k, v} structs (v: the value as text), so a span that repeats a key cannot fail
the load (a MAP would): the first value of a key wins. Messages are normalised to a list of {role, content}.
"""

from __future__ import annotations

MSG_TYPE = '[{"role":"VARCHAR","content":"VARCHAR","parts":[{"type":"VARCHAR","content":"VARCHAR","response":"VARCHAR","result":"VARCHAR"}]}]'  # noqa: E501
ATTR_TYPE = '[{"key":"VARCHAR","value":"JSON"}]'
EVENT_TYPE = '[{"name":"VARCHAR","timeUnixNano":"VARCHAR","attributes":[{"key":"VARCHAR","value":"JSON"}]}]'

_MACROS = [
    "_tnull(s) AS CASE WHEN s = '' THEN NULL ELSE s END",
    # an OTLP AnyValue as text (arrays and key/value lists as their JSON)
    "_tv(v) AS coalesce(v->>'stringValue', v->>'intValue', v->>'doubleValue', v->>'boolValue', "
    "(v->'arrayValue')::VARCHAR, (v->'kvlistValue')::VARCHAR, v->>'bytesValue', "
    "CASE WHEN json_type(v) NOT IN ('OBJECT', 'NULL') THEN v->>'$' END)",
    # an OTLP attribute array -> [{k, v}]
    f"_tattrs(j) AS coalesce(list_transform(try(from_json(j, '{ATTR_TYPE}')), "
    "lambda x: struct_pack(k := x.key, v := _tv(x.value))), [])",
    "_ta(a, key) AS list_filter(a, lambda x: x.k = key)[1].v",
    "_tne(l) AS CASE WHEN len(l) > 0 THEN l END",
    "_tmsg(r, c) AS struct_pack(role := lower(r), content := c)",
    # current GenAI shape: a JSON array of {role, parts: [{type, content}]} (or {role, content})
    f"_tjmsgs(x) AS CASE WHEN json_valid(x) AND json_type(x::JSON) = 'ARRAY' THEN list_transform("
    f"try(from_json(x, '{MSG_TYPE}')), lambda m: _tmsg(m.role, coalesce(m.content, array_to_string("
    "list_transform(m.parts, lambda p: coalesce(p.content, p.response, p.result)), chr(10))))) "
    "WHEN x IS NOT NULL AND NOT json_valid(x) THEN [_tmsg('user', x)] END",
    # system instructions: a JSON array of parts, or plain text
    "_tinstr(x) AS CASE WHEN json_valid(x) AND json_type(x::JSON) = 'ARRAY' THEN array_to_string("
    "list_transform(try(from_json(x, '[{\"type\":\"VARCHAR\",\"content\":\"VARCHAR\"}]')), lambda p: p.content), "
    "chr(10)) WHEN json_valid(x) AND json_type(x::JSON) = 'VARCHAR' THEN x::JSON->>'$' ELSE x END",
    # flattened messages: prefix || N || mid || 'role' | 'content' (OpenInference, OpenLLMetry's gen_ai.prompt.N.*)
    "_tflat(a, prefix, mid) AS list_transform(list_sort(list_distinct(list_transform(list_filter(a, lambda x: "
    "starts_with(x.k, prefix) AND regexp_matches(substr(x.k, length(prefix) + 1), '^[0-9]+[.]')), "
    "lambda x: try_cast(regexp_extract(substr(x.k, length(prefix) + 1), '^([0-9]+)', 1) AS INTEGER)))), "
    "lambda i: _tmsg(coalesce(_ta(a, prefix || i || mid || 'role'), 'user'), "
    "_ta(a, prefix || i || mid || 'content')))",
    # values of keys matching a pattern, joined
    "_tjoin(a, pat) AS _tnull(array_to_string(list_transform(list_filter(a, lambda x: regexp_matches(x.k, pat)), "
    "lambda x: x.v), chr(10) || '---' || chr(10)))",
    # older GenAI shape: message events on the span
    "_tevmsgs(ev, names) AS list_transform(list_filter(ev, lambda e: list_contains(names, e.name)), "
    "lambda e: _tmsg(CASE e.name WHEN 'gen_ai.system.message' THEN 'system' WHEN 'gen_ai.user.message' THEN 'user' "
    "WHEN 'gen_ai.tool.message' THEN 'tool' WHEN 'gen_ai.content.prompt' THEN 'user' ELSE 'assistant' END, "
    "coalesce(_ta(e.a, 'content'), _ta(e.a, 'gen_ai.event.content')->>'content', "
    "_ta(e.a, 'message')->>'content', _ta(e.a, 'gen_ai.prompt'), _ta(e.a, 'gen_ai.completion'))))",
    "_tlast(msgs, r) AS list_filter(msgs, lambda m: m.role = r)[-1].content",
    "_tall(msgs, r) AS _tnull(array_to_string(list_transform(list_filter(msgs, lambda m: m.role = r), "
    "lambda m: m.content), chr(10)))",
    # an id: hex as logged, or base64 of the raw bytes (protobuf JSON mapping); NULL when neither
    "_tid(x, n) AS CASE WHEN regexp_full_match(x, '[0-9a-fA-F]{' || (2 * n) || '}') THEN lower(x) "
    "WHEN try(octet_length(from_base64(x))) = n THEN lower(hex(from_base64(x))) END",
    "_tns(x) AS try(make_timestamp((try_cast(x AS HUGEINT) // 1000)::BIGINT))::TIMESTAMPTZ",
]


def install(con) -> None:
    """Create the macros on this cursor (temporary: they live as long as the connection)."""
    for m in _MACROS:
        con.execute(f"CREATE OR REPLACE TEMP MACRO {m}")
