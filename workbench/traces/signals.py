"""Content signals computed at ingest, in SQL, before the content policy masks or drops the text.

Injection heuristics are families of patterns (several languages, delimiters, obfuscation), so a phrasing the
tables do not list still trips its family's structure; a turn's score is how many families it trips. Sensitive
values are checked, not just matched: card numbers by Luhn, Singapore NRIC/FIN by their check letter. Values are
kept only as HMAC tokens (workspace key, per system), so equal values still match and none is stored in clear.
"""

from __future__ import annotations

from workbench.access.masking import mask_sql


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Direct injection / jailbreak families, on the lower-cased user turn.
INJECTION = {
    "override": r"(ignore|disregard|forget|override|bypass|skip)\W+(all\W+|any\W+|the\W+|your\W+|of\W+)*"
                r"(previous|prior|above|earlier|preceding|original|initial|system)?\W*(instructions?|rules|directions|"
                r"guidelines|prompts?|constraints|polic(y|ies))|ignore[sz]? (toutes )?les instructions|"
                r"ignora (todas )?las (instrucciones|reglas)|ignoriere (alle )?(vorherigen |bisherigen )?"
                r"(anweisungen|regeln)|abaikan (semua )?(arahan|instruksi|peraturan)|忽略|無視|игнорируй|забудь",
    "persona": r"you are now|from now on,? you|act as (an? )?(unfiltered|unrestricted|uncensored|evil|jailbroken)|"
               r"\bdan\b|do anything now|developer mode|god mode|jailbreak|no (restrictions|limits|filters)|"
               r"pretend (you are|to be|that you)|roleplay as|sans (aucune )?restrictions?|sin (restricciones|"
               r"filtros)|ohne (einschränkungen|filter)|tanpa (batasan|sekatan)|越狱|不受限制",
    "extraction": r"(system|initial|hidden|original|secret) (prompt|instructions?|message)|repeat (the |all |"
                  r"everything )?(words|text|lines)? ?(above|before)|print (your|the) (instructions|prompt)|"
                  r"what (are|were) your (instructions|rules)|verbatim|instructions? (initiales|système)|"
                  r"instrucciones (del sistema|iniciales)|systemanweisung|arahan sistem|系统提示|提示词",
    "delimiter": r"<\|im_(start|end)\|>|\[/?inst\]|<\|(system|user|assistant)\|>|###\s*(system|instruction)|"
                 r"</?(system|sys)>|\bbegin (system|admin)\b|\}\}\s*\{\{|^\s*system\s*:",
    "obfuscation": r"[a-z0-9+/]{60,}={0,2}|decode (this|the following)|base64|rot13|[\x{200b}-\x{200f}\x{2060}]|"
                   r"1gn0r3|!gnore|i\.g\.n\.o\.r\.e",
}
# Instructions planted in a document or tool result (indirect injection), on its lower-cased text.
DOC_INJECTION = {
    "override": INJECTION["override"],
    "persona": INJECTION["persona"],
    "delimiter": INJECTION["delimiter"],
    "addressing": r"(ai|assistant|chatbot|language model|llm|agent)\s*[,:]\s*(you must|please|now|always)|"
                  r"(note|instructions?|message) (to|for) (the )?(ai|assistant|agent|model)|"
                  r"when you (read|see|process|summari[sz]e) this|(new|updated|important|urgent) instructions?\s*:",
    "exfiltration": r"(send|e-?mail|forward|post|upload|transfer|copy)\b.{0,80}\b(to|at)\s+[a-z0-9._%+-]+@[a-z0-9.-]+"
                    r"|(send|forward|post|upload)\b.{0,80}https?://|!\[[^\]]*\]\(https?://",
}
REFUSAL = (r"\bi (can ?not|can't|cannot|won't|am unable to|'m unable to|am not able to)\b|i'm sorry,? but|"
           r"i am sorry,? but|not able to (help|share|assist)|je ne peux pas|no puedo|ich kann (das )?nicht|"
           r"tidak (dapat|boleh)")
SECRETS = (r"sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|xox[abprs]-[A-Za-z0-9-]{10,}|"
           r"AIza[0-9A-Za-z_-]{35}|-----BEGIN [A-Z ]*PRIVATE KEY-----")
EMAIL = r"[a-z0-9._%+-]+@[a-z0-9-]+(?:[.][a-z0-9-]+)*[.][a-z]{2,}"
PHONE = r"\+\d{1,3}[ -]?\d{3,4}[ -]?\d{3,4}(?:[ -]?\d{2,4})?|\b[689]\d{3}[ -]?\d{4}\b"
CARD = r"(?:\d[ -]?){12,18}\d"
NRIC = r"\b[STFGM][0-9]{7}[A-Z]\b"

_MACROS = [
    "_luhn(d) AS list_sum(list_transform(list_reverse(string_split(d, '')), lambda x, i: CASE WHEN i % 2 = 0 "
    "THEN x::INT * 2 - CASE WHEN x::INT * 2 > 9 THEN 9 ELSE 0 END ELSE x::INT END)) % 10 = 0",
    # NRIC/FIN check letter: weights 2765432, +4 for T/G, +3 for M, remainder mod 11 indexes the series' letters
    "_nric(c) AS right(c, 1) = substr(CASE WHEN left(c, 1) IN ('S', 'T') THEN 'JZIHGFEDCBA' "
    "WHEN left(c, 1) IN ('F', 'G') THEN 'XWUTRQPNMLK' ELSE 'XWUTRQPNJLK' END, "
    "((list_sum(list_transform([2, 7, 6, 5, 4, 3, 2], lambda w, i: w * substr(c, i + 1, 1)::INT)) "
    "+ CASE left(c, 1) WHEN 'T' THEN 4 WHEN 'G' THEN 4 WHEN 'M' THEN 3 ELSE 0 END) % 11)::INTEGER + 1, 1)",
    "_twords(t) AS list_filter(regexp_split_to_array(lower(t), '[^a-z0-9]+'), lambda w: w <> '')",
    "_tshingles(t) AS list_distinct(list_transform(range(1, greatest(len(_twords(t)) - 4, 1)), "
    "lambda i: array_to_string(_twords(t)[i:i + 5], ' ')))",
]


def install(con) -> None:
    """Create the signal macros on this cursor."""
    for m in _MACROS:
        con.execute(f"CREATE OR REPLACE TEMP MACRO {m}")


def families(text_sql: str, table: dict[str, str]) -> str:
    """SQL: the list of family names whose pattern matches the lower-cased text."""
    parts = ", ".join(f"CASE WHEN regexp_matches(lower({text_sql}), {_q(rx)}) THEN {_q(name)} END"
                      for name, rx in table.items())
    return f"CASE WHEN {text_sql} IS NULL THEN [] ELSE list_filter([{parts}], lambda v: v IS NOT NULL) END"


_PHONE_KEY = "right(regexp_replace(p, '[^0-9]', '', 'g'), 8)"  # the last 8 digits: with or without the country code


def _tok(kind: str, value_sql: str) -> str:
    return mask_sql("system_id", value_sql, "getvariable('wb_tkey')", _q("trace:" + kind))


def values(text_sql: str, with_secrets: bool = True) -> str:
    """SQL: 'type:token' (e-mails 'email:token:domain') for the checked personal values and secrets in a text."""
    t = f"coalesce({text_sql}, '')"
    parts = [
        f"list_transform(list_filter(list_transform(regexp_extract_all({t}, {_q(CARD)}), lambda c: "
        f"regexp_replace(c, '[^0-9]', '', 'g')), lambda d: len(d) BETWEEN 13 AND 19 AND _luhn(d)), "
        f"lambda d: 'card:' || {_tok('card', 'd')})",
        f"list_transform(list_filter(regexp_extract_all(upper({t}), {_q(NRIC)}), lambda c: _nric(c)), "
        f"lambda c: 'nric:' || {_tok('nric', 'c')})",
        f"list_transform(regexp_extract_all(lower({t}), {_q(EMAIL)}), "
        f"lambda e: 'email:' || {_tok('email', 'e')} || ':' || split_part(e, '@', 2))",
        f"list_transform(regexp_extract_all({t}, {_q(PHONE)}), lambda p: 'phone:' || {_tok('phone', _PHONE_KEY)})",
    ]
    if with_secrets:
        parts.append(f"list_transform(regexp_extract_all({t}, {_q(SECRETS)}), lambda s: 'secret:' || "
                     f"{_tok('secret', 's')})")
    return f"list_distinct(flatten([{', '.join(parts)}]))"


def destinations(args_sql: str) -> str:
    """SQL: where a tool call sends data: 'email:token:domain' per address and 'host:name' per URL host."""
    t = f"lower(coalesce({args_sql}, ''))"
    return (f"list_distinct(list_concat(list_transform(regexp_extract_all({t}, {_q(EMAIL)}), lambda e: 'email:' || "
            f"{_tok('email', 'e')} || ':' || split_part(e, '@', 2)), list_transform(regexp_extract_all({t}, "
            f"'https?://([a-z0-9.-]+)', 1), lambda h: 'host:' || h)))")


def leak_sql(system_sql: str, output_sql: str) -> str:
    """SQL: share of the system prompt's 6-word shingles that the output reproduces (NULL without both)."""
    return (f"CASE WHEN {system_sql} IS NULL OR {output_sql} IS NULL OR len(_twords({system_sql})) < 6 THEN NULL "
            f"ELSE len(list_filter(_tshingles({system_sql}), lambda s: contains(' ' || array_to_string("
            f"_twords({output_sql}), ' ') || ' ', ' ' || s || ' ')))::DOUBLE / len(_tshingles({system_sql})) END")


def compute(con, key: str | None) -> None:
    """Add the signal columns to _tstage (needs the canary per system in _tcanary(system_id, canary))."""
    install(con)
    con.execute(f"SET VARIABLE wb_tkey = {_q(key or '00' * 128)}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _tstage AS
        SELECT s.*, []::VARCHAR[] AS destinations,
               CASE WHEN kind IN ('llm', 'agent') THEN {families('input_text', INJECTION)} ELSE [] END AS sig_injection,
               CASE WHEN kind IN ('tool', 'retrieval') THEN {families("coalesce(tool_result, output_text)",
                                                                      DOC_INJECTION)} ELSE [] END AS sig_doc_injection,
               CASE WHEN kind = 'llm' THEN {leak_sql('system_prompt', 'output_text')} END AS sig_leak,
               coalesce(c.canary IS NOT NULL AND c.canary <> '' AND (contains(coalesce(output_text, ''), c.canary)
                        OR contains(coalesce(tool_args, ''), c.canary)), false) AS sig_canary,
               CASE WHEN kind = 'llm' THEN regexp_matches(lower(coalesce(output_text, '')), {_q(REFUSAL)}) END
                 AS sig_refusal,
               CASE WHEN kind = 'llm' THEN {values('output_text')} ELSE [] END AS sig_sensitive,
               CASE WHEN kind IN ('llm', 'agent') THEN {values('input_text', False)}
                    WHEN kind = 'tool' THEN {values('tool_result', False)} ELSE [] END AS sig_caller
        FROM _tstage s LEFT JOIN _tcanary c USING (system_id)
    """)
    # a tool result that carries planted instructions is not the caller's own data
    con.execute("UPDATE _tstage SET sig_caller = [] WHERE kind = 'tool' AND len(sig_doc_injection) > 0")
    con.execute(f"UPDATE _tstage SET destinations = {destinations('tool_args')} WHERE kind = 'tool'")
    con.execute("RESET VARIABLE wb_tkey")
