#!/usr/bin/env bash
# Records every ncu output format people have, from one program, with the ncu on the GPU machine.
# Run on the device (cwd = repo root; $OUT comes back). Output: $OUT/formats.tar.gz and $OUT/formats.log.
set -uo pipefail
D=$OUT/formats; mkdir -p $D
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
APP="python3 bench/device/formats_app.py"
log() { echo "== $*" | tee -a $OUT/formats.log; }
{ date -u; nvidia-smi --query-gpu=name,driver_version --format=csv; $NCU --version; python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } > $D/meta.txt 2>&1
$NCU --help > $D/ncu-help.txt 2>&1
K='regex:softmax|matmul|add_kernel'
run() { local name=$1; shift; log "$name: $*"; echo "$*" >> $D/commands.txt; timeout 240 "$@" > $D/$name 2>&1; echo "rc=$? $(wc -c < $D/$name) bytes" | tee -a $OUT/formats.log; }
# 1. the report itself, --set full, second launch of each kernel
run full.log $NCU --set full --clock-control none -k "$K" --launch-skip 3 --launch-count 3 -o $D/full -f $APP
# 2. exports of that report
run details.csv $NCU --import $D/full.ncu-rep --csv
run details-units-base.csv $NCU --import $D/full.ncu-rep --csv --print-units base
run raw.csv $NCU --import $D/full.ncu-rep --csv --page raw
run raw-units-base.csv $NCU --import $D/full.ncu-rep --csv --page raw --print-units base
run text.txt $NCU --import $D/full.ncu-rep
run text-details-all.txt $NCU --import $D/full.ncu-rep --print-details all
run text-rule-details.txt $NCU --import $D/full.ncu-rep --print-rule-details
# 3. direct runs: program stdout and ==PROF== lines interleaved with ncu's output
M=sm__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct,launch__registers_per_thread,gpu__time_duration.sum
run direct-metrics.csv $NCU --clock-control none -k "$K" --launch-skip 3 --launch-count 3 --csv --metrics $M $APP
run direct-metrics-details.csv $NCU --clock-control none -k "$K" --launch-skip 3 --launch-count 3 --csv --page details --metrics $M $APP
run direct-text.txt $NCU --clock-control none -k "$K" --launch-skip 3 --launch-count 3 --section SpeedOfLight --section LaunchStats --section Occupancy $APP
run direct-raw.csv $NCU --clock-control none -k "$K" --launch-skip 3 --launch-count 3 --csv --page raw --metrics $M $APP
# 4. localized numbers, if this ncu writes them
locale -a > $D/locales.txt 2>&1
run text-de.txt env LC_ALL=de_DE.UTF-8 LANG=de_DE.UTF-8 $NCU --import $D/full.ncu-rep
run details-de.csv env LC_ALL=de_DE.UTF-8 LANG=de_DE.UTF-8 $NCU --import $D/full.ncu-rep --csv
grep -n -i -E "locale|separator|print-fp|decimal" $D/ncu-help.txt > $D/help-locale-grep.txt
gzip -k $D/full.ncu-rep
tar czf $OUT/formats.tar.gz -C $OUT formats
ls -la $D | tee -a $OUT/formats.log
head -5 $D/details.csv; head -3 $D/direct-metrics.csv; cat $D/help-locale-grep.txt
