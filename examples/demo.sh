#!/bin/sh
# The demo `make demo` runs: the instrument library, one session scored, then the clinic export.
# Any step that fails stops the demo with its exit code (set -e). The export has two bad rows
# on purpose: batch's exit 3 ("some rows rejected") is the one outcome expected there.
set -eu
BIN=${1:-.venv/bin}
A="$BIN/alliance"
export COLUMNS=${COLUMNS:-110}
# Days since a session count to today. The export's sessions end on 2026-11-03: the demo
# counts to two days later, so its caseload reads as it did then, whatever today is.
export ALLIANCE_TODAY=${ALLIANCE_TODAY:-2026-11-05}

echo "== The bundled alliance instruments"
"$A" instruments -f table

echo
echo "== One client's WAI-SR after session 3 (answers in item order)"
"$A" score wai-sr 4 4 5 3 5 4 4 3 5 4 4 4 --client C-102 --session 3 -f table

echo
echo "== An SRS at the end of a session (marks measured in cm)"
"$A" score srs 8.3 9.1 7.6 8.8 --client C-102 --session 3 -f table

echo
echo "== The clinic's WAI-SR export (examples/clinic_wai_sr.csv): scored, bad rows reported"
rejected() { "$@" || { code=$?; [ "$code" -eq 3 ] || exit "$code"; }; }
rejected "$A" batch examples/clinic_wai_sr.csv -i wai-sr -o examples/.scored.csv --rejects examples/.rejects.csv
echo "first scored rows (examples/.scored.csv):"
head -n 4 examples/.scored.csv | cut -d, -f1-4,17-20
echo "rejected rows (examples/.rejects.csv):"
cat examples/.rejects.csv

# A throw-away history for the demo, so a real one is never touched.
DB=examples/.demo-history.sqlite
rm -f "$DB" "$DB-wal" "$DB-shm"
echo
echo "== The same export recorded in a local history (--save)"
rejected "$A" batch examples/clinic_wai_sr.csv -i wai-sr -o examples/.scored.csv --save --db "$DB" -q

echo
echo "== One client's alliance over sessions: a rupture in session 4, repaired in session 5"
"$A" history C-107 --db "$DB" -f table

echo
echo "== The caseload, those needing attention first (as of $ALLIANCE_TODAY: ALLIANCE_TODAY)"
"$A" clients --db "$DB" -f table --limit 10

echo
echo "== A report to share, print or file (self-contained HTML: charts, sessions, concerns)"
"$A" report C-107 --db "$DB" -o examples/.demo-report-C-107.html -q
echo "open $(pwd)/examples/.demo-report-C-107.html in a browser"
