#!/bin/sh
# The dashboard as a patient-safety team meets it: 'avvik broker' and 'avvik
# dashboard' in processes of their own, AnalysisRecords filed with
# avk_test_produce (as the analysis forwarder would). curl checks every
# route - status, content type, security headers, the figures - and Debian's
# chromium renders the page and the yearly report headless: the charts are
# drawn with the data, the console stays silent (no script error, no failed
# load, no CSP violation), a description's markup stays text, and the report
# prints to PDF. No personnummer reaches any answer, even one a faulty
# forwarder left in description_scrubbed. Every request carries an analyst's
# token; chromium logs in as a person would, through the login page a 401
# answers (the token in the link's fragment, as deploy/local/stack.sh prints it).
# usage: dashboard_chromium.sh AVVIK_BINARY AVK_TEST_PRODUCE
set -eu
avvik=$1
produce=$2
work=$(mktemp -d)
bs=$work/bootstrap.servers
broker_pid=
dashboard_pid=
cleanup() {
        for pid in $dashboard_pid $broker_pid; do kill "$pid" 2>/dev/null || true; done
        rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
FAIL_LOGS="$work/dashboard.log $work/chromium.log"
command -v chromium >/dev/null || fail "chromium is not installed (scripts/deps.sh installs it)"

"$avvik" broker -f "$bs" 2>"$work/broker.log" &
broker_pid=$!
poll "broker bootstrap file" test -s "$bs"
X="-X bootstrap.file=$bs"

# Times relative to now, at noon UTC, so the deviations are overdue by
# whole Swedish calendar days whenever the test runs.
now=$(date -u +%s)
day() { date -u -d "@$((now - $1 * 86400))" +%Y-%m-%dT12:00:00.000Z; }
year=$(date -u -d "@$((now - 40 * 86400))" +%Y)
d1=11111111-1111-4111-8111-111111111111
d2=22222222-2222-4222-8222-222222222222
d3=33333333-3333-4333-8333-333333333333
# record ID STATE STATE_AT MUNICIPALITY SUBREGION CATEGORY REPORTER RECEIVER EXTRA_JQ
# (the description is $desc)
desc="Utskrivning utan läkemedelslista."
record() {
        jq -cn --arg desc "$desc" --arg id "$1" --arg state "$2" --arg state_at "$3" --arg m "$4" --arg sub "$5" \
                --arg cat "$6" --arg rep "$7" --arg rec "$8" --arg reported "$(day 40)" \
                --arg ackdl "$(day 37)" --arg ansdl "$(day -20)" '{
                record_id: "00000000-0000-5000-8000-000000000000", deviation_id: $id,
                state: $state, state_at: $state_at, patient_pseudonym: null,
                age_group: "AGE_80_PLUS", sex: "FEMALE", municipality_code: $m, subregion: $sub,
                category: $cat, event_class: "INCIDENT_WITHOUT_HARM", harm_level: "LOW",
                psychological_harm: false, reporter_party: $rep, receiver_party: $rec,
                occurred_at: $reported, reported_at: $reported, time_to_acknowledge_ms: null,
                time_to_answer_ms: null, acknowledge_deadline_at: $ackdl,
                answer_deadline_at: $ansdl, overdue: false, deadline_kept: null,
                highest_escalation_step: null,
                flags: {possible_lex_maria: false, possible_lex_sarah: false, child_involved: false},
                description_scrubbed: $desc} | '"$9"
}
inject='<script>alert(1)</script> "><img src=x onerror=alert(1)>'
{
        # d1: unacknowledged, 37 days past its acknowledgement deadline; its
        # description carries markup and an identity the forwarder missed.
        # Routed to triage at once, under the mental-health sub-agreement.
        desc="Läkemedelslista saknades $inject pnr 19121212-1212"
        record $d1 ROUTED "$(day 40)" 1480 GOTEBORGSREGIONEN MEDICATION 1480 VGR \
                '.agreement = "MENTAL_HEALTH_ADDICTION" | .care_setting = "HOME_HEALTH_CARE"
                 | .hop = 0 | .routing_decision = "TRIAGE" | .routing_basis = "LOCAL_POLICY"'
        desc="Utskrivning utan läkemedelslista."
        # d2: routed by a rule, then - after a wrong receiver - again, then
        # answered in time: the answer is its current view, the first routing still counts.
        discharge='.agreement = "DISCHARGE_PAYMENT" | .agreement_derived = true | .care_setting = "INPATIENT"'
        record $d2 ROUTED "$(day 40)" 1490 SJUHARAD INFORMATION_TRANSFER 1490 VGR \
                "$discharge"' | .hop = 0 | .routing_decision = "AGREEMENT_RULE" | .routing_basis = "TEXT"'
        record $d2 ANSWERED "$(day 30)" 1490 SJUHARAD INFORMATION_TRANSFER 1490 VGR \
                "$discharge"' | .hop = 1 | .routing_decision = "REROUTED" | .routing_basis = "INFERENCE"
                 | .time_to_acknowledge_ms = 86400000 | .time_to_answer_ms = 864000000 | .deadline_kept = true'
        # d3: acknowledged at the county's manual triage, then escalated to the local forum.
        record $d3 ESCALATED "$(day 35)" 1401 GOTEBORGSREGIONEN DISCHARGE_PLANNING VGR 1401 \
                "$discharge"' | .hop = 2 | .routing_decision = "MANUAL" | .routing_basis = "LOCAL_POLICY"
                 | .time_to_acknowledge_ms = 172800000 | .highest_escalation_step = "LOCAL_FORUM"'
} >"$work/records.ndjson"
"$produce" $X deviation.analysis <"$work/records.ndjson" || fail "avk_test_produce exited $?"

"$avvik" token --role analyst chromium >"$work/token.out"
token=$(head -n 1 "$work/token.out")
tail -n 1 "$work/token.out" >"$work/tokens"
"$avvik" dashboard $X -X dashboard.listen=127.0.0.1:0 -X dashboard.port.file="$work/port" \
        -X dashboard.tokens.file="$work/tokens" 2>"$work/dashboard.log" &
dashboard_pid=$!
poll "dashboard port file" test -s "$work/port"
url=http://127.0.0.1:$(cat "$work/port")

# get PATH [CURL_ARGS...]: status in $status, body in $work/body, headers in $work/headers;
# with the analyst's token (anon: without).
anon() {
        path=$1
        shift
        status=$(curl -sS -o "$work/body" -D "$work/headers" -w '%{http_code}' "$@" "$url$path") ||
                fail "curl $path failed"
        cat "$work/body" >>"$work/all-bodies"
}
get() {
        path=$1
        shift
        anon "$path" -H "Authorization: Bearer $token" "$@"
}
expect() { [ "$status" = "$1" ] || fail "$2: status $status, want $1: $(head -c 300 "$work/body")"; }
header_has() { grep -qi "^$1" "$work/headers" || fail "$2: no '$1' header: $(cat "$work/headers")"; }
json() { jq -r "$1" "$work/body"; }
ready() {
        get /readyz
        [ "$status" = 200 ]
}
poll "dashboard ready (topic.analysis read)" ready
three() {
        get /api/sammanstallning.json
        [ "$(json .total)" = 3 ]
}
poll "three deviations in the figures" three

# Without the token: 401 (a page's answer is the login page), the probes open;
# another Host: 421 (DNS rebinding).
anon /
expect 401 "the page without a token"
header_has "WWW-Authenticate: Bearer" "the page without a token"
grep -q 'id="inloggning"' "$work/body" || fail "the 401 of the page is not the login page"
anon /api/forsenade.json
expect 401 "the overdue list without a token"
anon /api/forsenade.json -H "Authorization: Bearer wrong-$token"
expect 401 "the overdue list with a wrong token"
get /api/forsenade.json -H "Host: rebound.example:8090"
expect 421 "another Host"
anon /healthz
expect 200 "healthz without a token"

# The page and its files: types, CSP (scripts from self only), nosniff.
get /
expect 200 "the page"
header_has "Content-Type: text/html; charset=utf-8" "the page"
header_has "Content-Security-Policy: default-src 'none'; script-src 'self';" "the page"
header_has "X-Content-Type-Options: nosniff" "the page"
grep -q '<script src="/app.js" defer></script>' "$work/body" || fail "the page does not load app.js"
get /app.js
expect 200 "app.js"
header_has "Content-Type: text/javascript" "app.js"
get /style.css
expect 200 "style.css"
header_has "Content-Type: text/css" "style.css"
get /favicon.svg
expect 200 "favicon"

# The figures, of all years and of one.
for q in "" "?ar=$year"; do
        get "/api/sammanstallning.json$q"
        expect 200 "summary$q"
        header_has "Content-Type: application/json" "summary$q"
        header_has "Content-Security-Policy:" "summary$q"
        [ "$(json .total)" = 3 ] || fail "summary$q: total $(json .total), want 3"
        [ "$(json '.by_category[] | select(.code == "MEDICATION") | .count')" = 1 ] ||
                fail "summary$q: MEDICATION count"
        [ "$(json '.by_category[] | select(.code == "MEDICATION") | .label')" = "Läkemedel" ] ||
                fail "summary$q: Swedish category label"
        [ "$(json '.by_state[] | select(.code == "ANSWERED") | .count')" = 1 ] ||
                fail "summary$q: d2's current view is not ANSWERED"
        [ "$(json '.by_state[] | select(.code == "ROUTED") | .count')" = 1 ] ||
                fail "summary$q: only d1 is ROUTED now"
        [ "$(json '.deadline.kept')/$(json '.deadline.answered_with_deadline')" = 1/1 ] ||
                fail "summary$q: deadline kept"
        [ "$(json '.escalation.by_step[] | select(.code == "LOCAL_FORUM") | .count')" = 1 ] ||
                fail "summary$q: escalation"
        [ "$(json '.by_party_pair[] | select(.reporter_party == "1490") | .receiver_name')" = \
                "Västra Götalandsregionen" ] || fail "summary$q: party pair 1490 -> VGR"
        [ "$(json '.by_subregion[] | select(.code == "GOTEBORGSREGIONEN") | .count')" = 2 ] ||
                fail "summary$q: sub-region"
        [ "$(json .overdue)" = 1 ] || fail "summary$q: overdue $(json .overdue), want 1"
        [ "$(json '.by_agreement[] | select(.code == "DISCHARGE_PAYMENT") | .count')" = 2 ] ||
                fail "summary$q: sub-agreement count"
        [ "$(json '.by_agreement[] | select(.code == "DISCHARGE_PAYMENT") | .label')" = \
                "In- och utskrivning från sluten vård" ] || fail "summary$q: sub-agreement label"
        [ "$(json '.by_care_setting[] | select(.code == "INPATIENT") | .count')" = 2 ] ||
                fail "summary$q: care setting count"
        [ "$(json '.by_care_setting[] | select(.code == "HOME_HEALTH_CARE") | .label')" = \
                "Kommunal hemsjukvård" ] || fail "summary$q: care setting label"
        # Of 3 routed: d2 and d3 met a wrong receiver; of 3 decided, d1 triage, d3 manual.
        [ "$(json '[.clarity_by_month[] | select(.count > 0) | .routed, .wrong_receiver, .decided, .triage, .manual_triage]
                   | map(tostring) | join("/")')" = 3/2/3/1/1 ] ||
                fail "summary$q: rates by month $(jq -c .clarity_by_month "$work/body")"
        [ "$(json .deadline.basis)" = LOCAL_POLICY ] || fail "summary$q: the deadline's basis"
        json .now_local | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$' ||
                fail "summary$q: now_local $(json .now_local)"
done
# Swedish time, from the zone database (summer time or not, as that day had).
reported_local=$(TZ=Europe/Stockholm date -d "$(day 40)" '+%Y-%m-%d %H:%M')
[ "$(json '.latest[] | select(.deviation_id == "'$d1'") | .reported_at_local')" = \
        "$reported_local" ] || fail "reported_at_local, want $reported_local: $(cat "$work/body")"
[ "$(json .year)" = "$year" ] || fail "summary?ar=$year: year $(json .year)"
get "/api/sammanstallning.json?ar=$((year - 5))"
expect 200 "another year"
[ "$(json .total)" = 0 ] || fail "year $((year - 5)) holds $(json .total) deviations"
get "/api/sammanstallning.json?ar=tjugo"
expect 400 "a bad year"
json .error | grep -q "^ar: " || fail "the bad year is not named: $(cat "$work/body")"

get /api/forsenade.json
expect 200 "overdue"
[ "$(json .total)" = 1 ] || fail "overdue total $(json .total), want 1"
[ "$(json '.items[0].deviation_id')" = $d1 ] || fail "overdue id $(json '.items[0].deviation_id')"
[ "$(json '.items[0].reporter_name')/$(json '.items[0].receiver_party')" = "Göteborg/VGR" ] ||
        fail "overdue parties: $(cat "$work/body")"
[ "$(json '.items[0].deadline')" = ACKNOWLEDGE ] || fail "overdue deadline kind"
deadline_local=$(TZ=Europe/Stockholm date -d "$(day 37)" '+%Y-%m-%d %H:%M')
[ "$(json '.items[0].deadline_at_local')" = "$deadline_local" ] ||
        fail "overdue deadline_at_local $(json '.items[0].deadline_at_local'), want $deadline_local"
days=$(json '.items[0].days_overdue')
[ "$days" -ge 37 ] && [ "$days" -le 38 ] || fail "days overdue $days, want 37 (38 after 23:00 UTC)"

# The report: HTML, its one style sheet allowed by hash, no script at all,
# the description's markup escaped.
get "/rapport/$year"
expect 200 "the report"
header_has "Content-Type: text/html; charset=utf-8" "the report"
header_has "Content-Security-Policy: default-src 'none'; style-src 'sha256-" "the report"
grep -q '@page { size: A4' "$work/body" || fail "the report has no A4 print style"
grep -q '<svg' "$work/body" || fail "the report has no chart"
grep -qF '&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x onerror=alert(1)&gt;' \
        "$work/body" || fail "the report does not show the description escaped"
grep -qi '<script\|<img' "$work/body" && fail "the report holds markup from a description"
for label in 'Ansvarsfördelningens tydlighet' 'Per delöverenskommelse' 'Per vårdform' \
        'In- och utskrivning från sluten vård' 'Psykisk funktionsnedsättning, skadligt bruk och beroende' \
        'Dagar över tidsgränsen' 'Besvarade inom tidsgränsen (lokal policy)' 'lokal policy, inte avtalets text' \
        "$reported_local" "$deadline_local" '(svensk tid)' '1 avvikelse saknar'; do
        grep -qF "$label" "$work/body" || fail "the report has no '$label'"
done
grep -q '66,7&nbsp;%' "$work/body" || fail "the report has no wrong-receiver rate 66,7 %"
grep -q '[0-9]Z\|UTC' "$work/body" && fail "the report shows a time in UTC"
cp "$work/body" "$work/report.html"
get /rapport/tjugo
expect 404 "a report of no year"
get /metrics
expect 200 "metrics"
grep -q '^avk_dashboard_deviations 3$' "$work/body" || fail "metrics: $(grep deviations "$work/body")"
grep -q '^avk_dashboard_records_total{outcome="applied"} 4$' "$work/body" ||
        fail "metrics: $(grep records_total "$work/body")"
get /healthz
expect 200 "healthz"
get /nowhere
expect 404 "an unknown path"
get / -X POST
expect 405 "POST"
header_has "Allow: GET, HEAD" "POST"
grep -q '19121212\|1212-1212\|121212' "$work/all-bodies" && fail "a personnummer reached an answer"

# chromium: renders with data, no console message at all, nothing injected.
# The log's CONSOLE lines carry every console message (script errors,
# failed loads and CSP violations included).
browse() { # browse PATH OUT: the DOM after scripts ran, logged in through the fragment
        timeout 120 chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr \
                --v=0 --user-data-dir="$work/profile" --virtual-time-budget=10000 \
                --dump-dom "$url$1#nyckel=$token" >"$2" 2>>"$work/chromium.log" ||
                fail "chromium $1 exited $?"
}
quiet() {
        grep -i 'CONSOLE\|Uncaught\|Refused to\|Failed to load\|Content Security Policy' \
                "$work/chromium.log" && fail "chromium logged the above for $1"
        return 0
}
browse / "$work/page.html"
quiet /
grep -q '<svg [^>]*class="diagram"' "$work/page.html" || fail "the page drew no chart"
[ "$(grep -o '<rect ' "$work/page.html" | wc -l)" -ge 12 ] || fail "the charts have no bars"
grep -q 'Uppdaterad ' "$work/page.html" || fail "the page's script did not finish"
grep -q "$d1" "$work/page.html" || fail "the overdue deviation is not listed"
grep -q 'Göteborg' "$work/page.html" || fail "no municipality name on the page"
grep -q 'Utskrivning och samordnad planering' "$work/page.html" || fail "no Swedish category"
grep -q '1 avvikelse saknar kvittens' "$work/page.html" || fail "the overdue count is not in the singular"
grep -q 'Dagar över tidsgränsen' "$work/page.html" || fail "no 'Dagar över tidsgränsen' column"
grep -q 'Besvarade inom tidsgränsen (lokal policy)' "$work/page.html" ||
        fail "the deadline figure does not say it rests on local policy"
grep -q 'Tidsgränserna är lokal policy, inte avtalets text' "$work/page.html" ||
        fail "the page does not say the deadlines are local policy"
for label in 'Ansvarsfördelningens tydlighet' 'Per delöverenskommelse' 'Per vårdform' \
        'In- och utskrivning från sluten vård' 'Psykisk funktionsnedsättning, skadligt bruk och beroende' \
        'Slutenvård' 'Kommunal hemsjukvård' "$reported_local" "$deadline_local" '(svensk tid)'; do
        grep -qF "$label" "$work/page.html" || fail "no '$label' on the page"
done
# The month's rates: wrong receiver 2 of 3 routed, triage and manual triage 1 of 3.
grep -q '66,7[^<0-9]*%' "$work/page.html" || fail "no wrong-receiver rate 66,7 % on the page"
[ "$(grep -o '33,3[^<0-9]*%' "$work/page.html" | wc -l)" -ge 2 ] || fail "no triage rates 33,3 % on the page"
grep -q '[0-9]\.[0-9][0-9][0-9]Z' "$work/page.html" && fail "the page shows a time in UTC"
for label in 'Chef närmast patienten' 'Chef över chef' 'Partsgemensamt forum på länsnivå' \
        'Södra Älvsborg'; do
        grep -q "$label" "$work/page.html" || fail "no '$label' on the page"
done
grep -qF '&lt;script&gt;alert(1)&lt;/script&gt; "&gt;&lt;img src=x onerror=alert(1)&gt;' \
        "$work/page.html" || fail "the page does not show the description as text"
grep -qi '<img\|<script>alert' "$work/page.html" && fail "an element was injected into the page"
grep -q '19121212\|1212-1212' "$work/page.html" && fail "a personnummer reached the page"

browse "/rapport/$year" "$work/report-dom.html"
quiet "/rapport/$year"
grep -q "Årlig uppföljning av avvikelser i samverkan $year" "$work/report-dom.html" ||
        fail "the report did not render"
grep -q '<rect ' "$work/report-dom.html" || fail "the report's charts have no bars"
grep -qi '<img\|<script' "$work/report-dom.html" && fail "an element was injected into the report"

timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
        --virtual-time-budget=10000 --no-pdf-header-footer --print-to-pdf="$work/report.pdf" \
        "$url/rapport/$year#nyckel=$token" \
        2>>"$work/chromium.log" || fail "chromium --print-to-pdf exited $?"
[ "$(head -c 5 "$work/report.pdf")" = "%PDF-" ] || fail "no PDF"
[ "$(wc -c <"$work/report.pdf")" -gt 20000 ] || fail "the PDF is suspiciously small"

# SIGTERM: a clean stop (under the sanitizers, also no leak).
kill -TERM "$dashboard_pid"
set +e
wait "$dashboard_pid"
rc=$?
set -e
dashboard_pid=
[ $rc -eq 0 ] || fail "the dashboard exited $rc after SIGTERM"
[ -e "$work/port" ] && fail "the port file is still there"
echo "ok"
