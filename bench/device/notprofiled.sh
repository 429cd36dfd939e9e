#!/usr/bin/env bash
# Record reports holding launches ncu could not profile (issue 11's "not profiled"), ~1 min.
# Writes $OUT/notprofiled/{fault,replay}.ncu-rep (+ .log with ncu's messages, + raw CSV of each).
set -u
export PATH=$PATH:/usr/local/cuda/bin
D=$OUT/notprofiled
mkdir -p "$D"
ncu --version | tee "$D/ncu-version.txt"
timeout 120 ncu --clock-control none --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed \
  -o "$D/fault" -f python3 bench/device/notprofiled_app.py fault > "$D/fault.log" 2>&1
echo "fault rc=$?" | tee -a "$D/fault.log"
timeout 180 ncu --clock-control none --replay-mode application --set full \
  -o "$D/replay" -f python3 bench/device/notprofiled_app.py replay > "$D/replay.log" 2>&1
echo "replay rc=$?" | tee -a "$D/replay.log"
for r in fault replay; do
  if [ -f "$D/$r.ncu-rep" ]; then
    ncu --import "$D/$r.ncu-rep" --csv --page raw > "$D/$r-raw.csv" 2>&1
    echo "$r: $(ls -la "$D/$r.ncu-rep" | awk '{print $5}') bytes, $(wc -l < "$D/$r-raw.csv") CSV lines"
  else
    echo "$r: no report"
  fi
  grep -E "==(ERROR|WARNING)==" "$D/$r.log" | head -5
done
