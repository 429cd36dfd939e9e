#!/usr/bin/env bash
# First GPU-machine session: record the seed reports, CSV exports, ncu failure logs, the 10k-launch
# report, and sweep the fused-conv candidates. Everything lands under $OUT (tarred: few files come back).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
R=$OUT/rec; mkdir -p $R/seed $R/logs $R/csv $R/many
log() { echo "[$(date +%T)] $*"; }

log env
{ date -u +%Y-%m-%dT%H:%M:%SZ; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  $NCU --version | tail -1; python3 -c "import sys,torch,triton;print('python',sys.version.split()[0]);print('torch',torch.__version__);print('triton',triton.__version__);print('cuda',torch.version.cuda)"
  readlink -f $NCU; uname -r; } > $R/env.txt 2>&1
cat $R/env.txt

METRICS=sm__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct,launch__registers_per_thread,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,launch__occupancy_limit_warps,launch__occupancy_limit_blocks,sm__maximum_warps_per_active_cycle_pct,l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum,l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum,gpu__time_duration.sum,launch__block_size,launch__waves_per_multiprocessor,dram__bytes_read.sum,dram__bytes_write.sum,launch__shared_mem_per_block_dynamic,launch__shared_mem_per_block_static,gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed,lts__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_active,launch__thread_count,sm__cycles_elapsed.avg.per_second,profiler__replayer_passes
echo "$METRICS" > $R/metrics.txt
for v in ModelNew_seed000 ModelNew_seed001 ModelNew; do
  log "small $v"
  cmd="$NCU --clock-control none --nvtx --nvtx-include ncu_advisor/ --metrics $METRICS -o $R/seed/${v}_small -f python3 -m ncu_advisor.collect.profile.child kernels/fused.py $v --mode ncu"
  echo "$cmd" >> $R/commands.txt
  /usr/bin/time -f "%e s" $cmd > $R/logs/${v}_small.log 2>&1; tail -3 $R/logs/${v}_small.log
done
for v in ModelNew_seed000 ModelNew_seed001; do
  log "full $v"
  cmd="$NCU --clock-control none --nvtx --nvtx-include ncu_advisor/ --set full -o $R/seed/${v}_full -f python3 -m ncu_advisor.collect.profile.child kernels/fused.py $v --mode ncu"
  echo "$cmd" >> $R/commands.txt
  /usr/bin/time -f "%e s" $cmd > $R/logs/${v}_full.log 2>&1; tail -3 $R/logs/${v}_full.log
done
log csv
$NCU --import $R/seed/ModelNew_seed000_small.ncu-rep --csv --page raw > $R/csv/seed000_small_raw.csv 2>&1
$NCU --import $R/seed/ModelNew_seed000_small.ncu-rep --csv --page raw --print-units base > $R/csv/seed000_small_raw_base.csv 2>&1
$NCU --import $R/seed/ModelNew_seed001_full.ncu-rep --csv --page raw > $R/csv/seed001_full_raw.csv 2>&1
echo "$NCU --import REPORT --csv --page raw [--print-units base]" >> $R/commands.txt

log "failure logs"
$NCU --clock-control none --nvtx --nvtx-include nosuchrange/ --metrics gpu__time_duration.sum -o $R/logs/none -f python3 bench/many_launches.py 3 > $R/logs/fail_no_kernels.log 2>&1; echo "rc=$?" >> $R/logs/fail_no_kernels.log
cat > /tmp/crash.py <<'PY'
import torch, triton, triton.language as tl
@triton.jit
def bad(p):
    tl.store(p + 1_000_000_000_000, 1.0)
x = torch.zeros(1, device="cuda"); torch.cuda.nvtx.range_push("ncu_advisor"); bad[(1,)](x); torch.cuda.synchronize(); torch.cuda.nvtx.range_pop()
PY
timeout 120 $NCU --clock-control none --nvtx --nvtx-include ncu_advisor/ --metrics gpu__time_duration.sum -o $R/logs/crash -f python3 /tmp/crash.py > $R/logs/fail_crash.log 2>&1; echo "rc=$?" >> $R/logs/fail_crash.log
$NCU --metrics no__such_metric.sum -o $R/logs/badmetric -f python3 bench/many_launches.py 3 > $R/logs/fail_bad_metric.log 2>&1; echo "rc=$?" >> $R/logs/fail_bad_metric.log
$NCU --version > $R/logs/ncu_version.txt 2>&1
tail -4 $R/logs/fail_*.log

if [ "${SKIP_SWEEP:-0}" = 1 ]; then log "sweep skipped"; else
log sweep
timeout 330 python3 bench/conv_sweep.py $R/sweep.jsonl > $R/logs/sweep.log 2>&1; echo "sweep rc=$?"
fi
log many
cmd="$NCU --clock-control none --cache-control none --nvtx --nvtx-include ncu_advisor/ --metrics gpu__time_duration.sum,launch__grid_size,launch__block_size,launch__registers_per_thread -o $R/many/launches10k -f python3 bench/many_launches.py 10000"
echo "$cmd" >> $R/commands.txt
/usr/bin/time -f "%e s" timeout 200 $cmd > $R/logs/many.log 2>&1; tail -2 $R/logs/many.log
log pack
cd $OUT && tar czf rec.tgz rec && ls -la rec.tgz
tail -30 $R/logs/sweep.log
