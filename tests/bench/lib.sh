# lib.sh - helpers shared by the bench scripts; source it after setting
# NAME (the prefix of die's message):
#
#   . "$(dirname "$0")/lib.sh"
#
# Only functions: sourcing it starts nothing and sets no option.

log() { printf '%s\n' "$*" >&2; }
die() { log "${NAME:-bench}: $*"; exit 1; }

# stop PID...: SIGTERM, up to 5 s, then SIGKILL; only processes the script started.
stop() {
  local pid i
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# ticks PID...: CPU ticks (user + system) the PIDs have used so far; 0 for
# one that is gone.
ticks() {
  local pid sum=0 t
  for pid in "$@"; do
    t=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo "$sum"
}

# cpustat: "BUSY TOTAL", the machine's CPU time since boot from the first
# line of /proc/stat, in ticks summed over all CPUs: BUSY is all but idle
# and iowait, TOTAL includes them (guest time is already in user).
cpustat() {
  awk '$1 == "cpu" {t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat
}

# median: the median of the numbers on stdin ("nan" if none).
median() {
  sort -g | awk 'NF && $1 != "nan" {v[n++] = $1}
    END {if (!n) print "nan"; else if (n % 2) print v[(n - 1) / 2]; else print (v[n / 2 - 1] + v[n / 2]) / 2}'
}

# ratio A B: A/B with two decimals, or n/a.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 > 0 && a != "nan") printf "%.2f", a / b; else print "n/a"}'; }
