#!/usr/bin/env bash
# Mailwright's durable workflow runs against two job queues people would pick
# instead (graphile-worker on PostgreSQL, BullMQ on Redis), side by side on
# this machine, alternating systems round by round. Prints one Markdown table.
# See README.md beside this file.
#
#   benchmarks/peers/run.sh [--rounds N] [--counts 2000,20000,2000@500]
#       [--systems mailwright-sqlite,mailwright-pg-tls,...] [--out DIR]
#       [--mailwright-bin PATH] [--wait-for-binary SECONDS] [--wait-quiet SECONDS]
#       [--retries N]
#
# --counts: one measurement per item and system in each round; N is N jobs
# offered as fast as they are answered, N@R is N jobs offered at R per second.
# --wait-quiet: before each measurement, wait up to that long (default 900 s)
# while cargo or rustc runs or the machine is busy; a measurement during
# which other processes used CPU is taken again (--retries, default 2), then
# kept and marked.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

all_systems="mailwright-sqlite,mailwright-pg-tls,mailwright-pg,graphile-worker-tls,graphile-worker,bullmq,bullmq-aof"
rounds=2
counts="2000,20000,2000@500"
systems="$all_systems"
concurrency=32
workers=8
out=""
mailwright_bin="${MAILWRIGHT_BENCH_BIN:-}"
wait_for_binary=0
wait_quiet=900
retries=2
postgres_admin="${PEERS_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --counts) counts="$2"; shift 2 ;;
        --systems) systems="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --mailwright-bin) mailwright_bin="$2"; shift 2 ;;
        --wait-for-binary) wait_for_binary="$2"; shift 2 ;;
        --wait-quiet) wait_quiet="$2"; shift 2 ;;
        --retries) retries="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
IFS=, read -r -a system_list <<<"$systems"
IFS=, read -r -a count_list <<<"$counts"
for system in "${system_list[@]}"; do
    case ",$all_systems," in
        *",$system,"*) ;;
        *) echo "unknown system $system (known: $all_systems)" >&2; exit 2 ;;
    esac
done
for count in "${count_list[@]}"; do
    [[ "$count" =~ ^[0-9]+(@[0-9]+)?$ ]] || { echo "bad --counts item $count (N or N@RATE)" >&2; exit 2; }
done
# wants PREFIX: a selected system starts with PREFIX; has SYSTEM: it is selected.
wants() { [[ ",$systems," == *",$1"* ]]; }
has() { [[ ",$systems," == *",$1,"* ]]; }

work="$(mktemp -d /tmp/mw-peers.XXXXXX)"
out="${out:-$work}"
mkdir -p "$out"
results="$out/results.txt"
: >"$results"
pids=()
watcher=""
graphile_db=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$watcher" ]]; then kill "$watcher" 2>/dev/null || true; fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$graphile_db" ]]; then
        psql "$postgres_admin" -qAtc "DROP DATABASE IF EXISTS $graphile_db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [[ "$out" != "$work" ]]; then rm -rf "$work"; else rm -rf "$work/redis-"* "$work/bench_workflows"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Anything else on the machine (a compile, another benchmark) makes every
# figure low and noisy: before a measurement, wait until no cargo/rustc runs
# and the machine is below 15% busy over one second.
compiling() { pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; }
busy_permille() {
    local _cpu a b c d e f g h rest busy0 total0
    read -r _cpu a b c d e f g h rest </proc/stat
    busy0=$((a + b + c + f + g)); total0=$((a + b + c + d + e + f + g + h))
    sleep 1
    read -r _cpu a b c d e f g h rest </proc/stat
    echo $(((a + b + c + f + g - busy0) * 1000 / (a + b + c + d + e + f + g + h - total0 + 1)))
}
await_quiet() {
    local deadline=$((SECONDS + wait_quiet)) said=0 busy reason
    while :; do
        if compiling; then
            reason="cargo/rustc running"
        else
            busy="$(busy_permille)"
            ((busy > 150)) || return 0
            reason="$((busy / 10))% CPU busy"
        fi
        if ((SECONDS >= deadline)); then
            log "  the machine is still busy ($reason) after ${wait_quiet}s: measuring anyway (marked)"
            return 1
        fi
        ((said)) || log "  the machine is busy ($reason): waiting up to ${wait_quiet}s"
        said=1
        sleep 4
    done
}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Poll COMMAND until it succeeds, for at most SECONDS.
wait_until() {
    local seconds="$1" what="$2"; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "gave up after ${seconds}s waiting for $what" >&2
            return 1
        fi
        sleep 0.05
    done
}

free_port() {
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

busy_ticks() {
    local _cpu user nice system idle iowait irq softirq _rest
    read -r _cpu user nice system idle iowait irq softirq _rest </proc/stat
    echo $((user + nice + system + irq + softirq))
}
# CPU time the hypervisor gave to other machines while this one wanted it.
steal_ticks() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    echo "$steal"
}
clk_tck="$(getconf CLK_TCK)"
export CLK_TCK="$clk_tck"

# --- Mailwright's benchmark binary: a private copy, so that a rebuild of
# target/ during the run does not change what is measured.
if wants mailwright; then
    if [[ -z "$mailwright_bin" ]]; then
        mailwright_bin="$repo/target/release/examples/bench_workflows"
    fi
    deadline=$((SECONDS + wait_for_binary))
    until [[ -x "$mailwright_bin" ]]; do
        if ((SECONDS >= deadline)); then
            echo "no Mailwright benchmark at $mailwright_bin; build it with" >&2
            echo "  cargo build --release -p mailwright --example bench_workflows" >&2
            exit 1
        fi
        sleep 5
    done
    cp -p "$mailwright_bin" "$work/bench_workflows"
    mailwright_bin="$work/bench_workflows"
fi

# --- Node dependencies.
if [[ ! -d "$here/node_modules" ]]; then
    log "npm ci"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- The mail API stand-in for the peers.
if wants graphile-worker || wants bullmq; then
    PORT_FILE="$work/sink.port" node "$here/sink.js" &
    pids+=("$!")
    wait_until 10 "the sink" test -s "$work/sink.port"
    sink="http://127.0.0.1:$(cat "$work/sink.port")"
    wait_until 10 "the sink to answer" node -e "require('http').get('$sink/stats',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
fi

# --- Redis for BullMQ: our own servers on free ports in our own folders
# (never the system Redis on 6379). One as shipped (no persistence), one with
# its durable setting (AOF, fsync every second).
# start_redis VAR NAME ARGS...: start redis-server on a free port in its own
# folder and put the port in VAR.
start_redis() {
    local var="$1" name="$2"; shift 2
    local port dir
    port="$(free_port)"
    dir="$work/redis-$name"
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no \
        --logfile "$dir/redis.log" "$@" >"$dir/stdout" 2>&1 &
    pids+=("$!")
    local deadline=$((SECONDS + 10))
    until [[ "$(redis-cli -p "$port" ping 2>/dev/null)" == PONG ]]; do
        if ((SECONDS >= deadline)); then
            echo "redis-server ($name) did not answer PING within 10 s; log:" >&2
            cat "$dir/redis.log" >&2 || true
            return 1
        fi
        sleep 0.05
    done
    printf -v "$var" '%s' "$port"
}
if has bullmq; then
    start_redis redis_plain_port plain --appendonly no --save ''
fi
if has bullmq-aof; then
    start_redis redis_aof_port aof --appendonly yes --appendfsync everysec --save ''
fi

# Empty a Redis of ours between measurements; with AOF, also rewrite the file
# so every measurement starts from a small log.
reset_redis() {
    local port="$1"
    redis-cli -p "$port" flushall >/dev/null
    if [[ "$(redis-cli -p "$port" config get appendonly | tail -n1)" == yes ]]; then
        redis-cli -p "$port" bgrewriteaof >/dev/null
        wait_until 30 "the AOF rewrite" bash -c "redis-cli -p $port info persistence | grep -q '^aof_rewrite_in_progress:0'"
    fi
}

# One measurement. Appends one key=value line to $results.
measure() {
    local round="$1" system="$2" count="$3"
    local jobs="${count%@*}" rate=""
    [[ "$count" == *@* ]] && rate="${count#*@}"
    local line="" before after start_ns end_ns load1 status=0
    local peer=()
    case "$system" in
        graphile-worker*)
            graphile_db=peers_bench
            psql "$postgres_admin" -qAtc "DROP DATABASE IF EXISTS $graphile_db WITH (FORCE)" >/dev/null
            psql "$postgres_admin" -qAtc "CREATE DATABASE $graphile_db" >/dev/null
            local tls=0
            [[ "$system" == *-tls ]] && tls=1
            peer=(node "$here/bench-peer.js" --system graphile-worker --label "$system"
                --pg-url "${postgres_admin%/*}/$graphile_db" --pg-tls "$tls") ;;
        bullmq*)
            local port="${redis_plain_port:-}"
            [[ "$system" == bullmq-aof ]] && port="${redis_aof_port:-}"
            reset_redis "$port"
            peer=(node "$here/bench-peer.js" --system bullmq --label "$system" --redis-port "$port") ;;
    esac
    local other=0
    await_quiet || other=1
    read -r load1 _ </proc/loadavg
    log "round $round: $system, $jobs jobs${rate:+ at $rate/s} (load $load1)"
    # Count the CPU of processes that are not ours while we measure.
    rm -f "$work/watch.out" "$work/watch.out.ready"
    node "$here/watch.js" "$$" "$work/watch.out" &
    watcher=$!
    wait_until 10 "the watcher" test -e "$work/watch.out.ready"
    before="$(busy_ticks)"
    local steal_before steal_ms
    steal_before="$(steal_ticks)"
    start_ns="$(date +%s%N)"
    case "$system" in
        mailwright-sqlite)
            line="$(env -u MAILWRIGHT_TEST_POSTGRES_URL RUST_LOG=warn "$mailwright_bin" "$jobs" "$concurrency" "$workers" $rate)" || status=$? ;;
        mailwright-pg-tls)
            line="$(MAILWRIGHT_TEST_POSTGRES_URL="$postgres_admin" RUST_LOG=warn "$mailwright_bin" "$jobs" "$concurrency" "$workers" $rate)" || status=$? ;;
        mailwright-pg)
            line="$(MAILWRIGHT_TEST_POSTGRES_URL="$postgres_admin?sslmode=disable" RUST_LOG=warn "$mailwright_bin" "$jobs" "$concurrency" "$workers" $rate)" || status=$? ;;
        *)
            line="$("${peer[@]}" --jobs "$jobs" --concurrency "$concurrency" --workers "$workers" \
                ${rate:+--rate "$rate"} --sink "$sink")" || status=$? ;;
    esac
    end_ns="$(date +%s%N)"
    after="$(busy_ticks)"
    steal_ms=$((($(steal_ticks) - steal_before) * 1000 / clk_tck))
    kill -TERM "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    watcher=""
    local foreign foreign_ms
    foreign="$(cat "$work/watch.out" 2>/dev/null || echo "foreign_cpu_ms=0 foreign=unknown")"
    foreign_ms="${foreign#foreign_cpu_ms=}"; foreign_ms="${foreign_ms%% *}"; foreign_ms="${foreign_ms:-0}"
    compiling && other=1
    # Marked when others used more than 300 ms or 5% of the measured CPU.
    if ((foreign_ms > 300 && foreign_ms * 20 > (after - before) * 1000 / clk_tck)); then other=1; fi
    # Or when the hypervisor took more than 10% of it for other machines.
    if ((steal_ms > 300 && steal_ms * 10 > (after - before) * 1000 / clk_tck)); then other=1; fi
    if [[ "$status" -ne 0 || -z "$line" ]]; then
        log "  $system ($count) failed with status $status"
        echo "round=$round scenario=$count system=$system error=$status" >>"$results"
        return 0
    fi
    line="$(tail -n1 <<<"$line")"
    # Mailwright's process is the measurement (its setup included); the peers
    # report their own window (first enqueue to last completion) as cpu_ms.
    local process_cpu_ms process_s
    process_cpu_ms=$(((after - before) * 1000 / clk_tck))
    process_s="$(awk -v ns=$((end_ns - start_ns)) 'BEGIN { printf "%.3f", ns / 1e9 }')"
    case "$system" in
        mailwright-*) line="system=$system $line cpu_ms=$process_cpu_ms window_s=$process_s" ;;
    esac
    line="round=$round scenario=$count $line process_cpu_ms=$process_cpu_ms process_s=$process_s load1=$load1 steal_ms=$steal_ms $foreign other_load=$other"
    marked="$other"
    echo "$line" >>"$results"
    log "  $line"
}

log "results: $results (CPU clock tick $clk_tck/s, $(nproc) cores)"
if wants mailwright; then
    echo "binary mailwright_sha256=$(sha256sum "$mailwright_bin" | cut -c1-12) built=$(date -u -r "$mailwright_bin" +%Y-%m-%dT%H:%MZ)" >>"$results"
fi
# Mailwright's per-process setup (database, migrations, OAuth connect) is
# inside its CPU figure: measure it once with a single run, for the notes.
if wants mailwright; then
    for system in "${system_list[@]}"; do
        [[ "$system" == mailwright-* ]] || continue
        await_quiet || true
        before="$(busy_ticks)"
        case "$system" in
            mailwright-sqlite) env -u MAILWRIGHT_TEST_POSTGRES_URL RUST_LOG=warn "$mailwright_bin" 1 1 "$workers" >/dev/null ;;
            mailwright-pg-tls) MAILWRIGHT_TEST_POSTGRES_URL="$postgres_admin" RUST_LOG=warn "$mailwright_bin" 1 1 "$workers" >/dev/null ;;
            mailwright-pg) MAILWRIGHT_TEST_POSTGRES_URL="$postgres_admin?sslmode=disable" RUST_LOG=warn "$mailwright_bin" 1 1 "$workers" >/dev/null ;;
        esac
        after="$(busy_ticks)"
        echo "setup system=$system one_run_cpu_ms=$(((after - before) * 1000 / clk_tck))" >>"$results"
    done
fi

started=$SECONDS
for ((round = 1; round <= rounds; round++)); do
    for count in "${count_list[@]}"; do
        for system in "${system_list[@]}"; do
            for ((try = 0; ; try++)); do
                marked=0
                measure "$round" "$system" "$count"
                ((marked && try < retries)) || break
                # Keep the line for the record, out of the tables.
                sed -i '$ s/^round=/discarded round=/' "$results"
                log "  other processes used the CPU during that measurement: measuring again"
            done
        done
    done
done
log "all measurements took $((SECONDS - started)) s"
if [[ -n "$graphile_db" ]]; then
    psql "$postgres_admin" -qAtc "DROP DATABASE IF EXISTS $graphile_db WITH (FORCE)" >/dev/null
    graphile_db=""
fi

node "$here/report.js" "$results" | tee "$out/table.md"
