#!/usr/bin/env bash
# Runs a command with real test servers for the store tests:
# MongoDB (FerretDB + SQLite), DynamoDB (dynalite), Redis (redis-server),
# NATS JetStream (nats-server) and PostgreSQL, each on a free loopback port.
#
#   tools/testservers.sh -- CMD ARGS...
#
# Installs what is missing, starts the servers, exports EVENTSOURCING_* (see
# tools/README.md), runs CMD, then stops exactly the servers it started and
# removes their temp dir, exiting with CMD's status.
#
# Internal: tools/testservers.sh --restart NAME RUNDIR restarts one server of
# a running set on its old port and data dir (this is what the exported
# EVENTSOURCING_*_RESTART variables call); it prints the new server PID.
#
# Tunables (environment):
#   EVENTSOURCING_TESTSERVERS_TTL            max life of each server (timeout(1) duration, default 45m)
#   EVENTSOURCING_TESTSERVERS_READY_TIMEOUT  seconds to wait for each server to accept connections (default 60)
#   EVENTSOURCING_TESTSERVERS_KEEP=1         keep the temp dir (data and logs) after the run
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SELF="$ROOT/tools/testservers.sh"
TOOLS="$ROOT/tools/testservers"
STATE="$ROOT/.testservers"
BIN="$STATE/bin"
TTL=${EVENTSOURCING_TESTSERVERS_TTL:-45m}
READY_TIMEOUT=${EVENTSOURCING_TESTSERVERS_READY_TIMEOUT:-60}
SERVERS=(mongo dynamodb redis nats postgres)

say() { printf '%s\n' "$*" >&2; }
die() { say "testservers: $*"; exit 1; }

label() {
	case $1 in
	mongo) echo "mongo (FerretDB)" ;;
	dynamodb) echo "dynamodb (dynalite)" ;;
	redis) echo "redis (redis-server)" ;;
	nats) echo "nats (nats-server)" ;;
	postgres) echo "postgres (PostgreSQL)" ;;
	esac
}

# server_argv NAME PORT DIR: sets ARGV to the server's command line.
server_argv() {
	local name=$1 port=$2 dir=$3
	case $name in
	mongo) ARGV=("$BIN/ferretdb" -addr "127.0.0.1:$port" -dir "$dir") ;;
	dynamodb) ARGV=(node "$TOOLS/node_modules/dynalite/cli.js" --host 127.0.0.1 --port "$port" --path "$dir"
		--createTableMs 0 --deleteTableMs 0 --updateTableMs 0) ;;
	redis) ARGV=(redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir") ;;
	nats) ARGV=("$BIN/natsserver" -addr "127.0.0.1:$port" -dir "$dir") ;;
	postgres)
		# The data directory is made once per run (initdb) and kept across
		# restarts; both run as the postgres user, which initdb requires.
		pg_init "$dir" || return 1
		ARGV=("${PG_AS[@]}" "$PGBIN/postgres" -D "$dir/pgdata" -c listen_addresses=127.0.0.1 -p "$port"
			-k "$dir" -c fsync=off -c full_page_writes=off -c max_connections=300) ;;
	*) die "unknown server $name" ;;
	esac
}

server_url() {
	local name=$1 port=$2
	case $name in
	mongo) echo "mongodb://127.0.0.1:$port/" ;;
	dynamodb) echo "http://127.0.0.1:$port" ;;
	redis) echo "127.0.0.1:$port" ;;
	nats) echo "nats://127.0.0.1:$port" ;;
	postgres) echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable" ;;
	esac
}

# pg_bin: the newest installed PostgreSQL's bin directory.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

PGBIN=$(pg_bin)
PG_AS=()
[ "$(id -u)" = 0 ] && PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups)

# pg_init DIR: creates a PostgreSQL data directory in DIR/pgdata unless one
# exists. PostgreSQL refuses to run as root, so as root it runs as the
# postgres user (DIR and its parents must be traversable by it).
pg_init() {
	local dir=$1
	[ -f "$dir/pgdata/PG_VERSION" ] && return 0
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || { say "testservers: no postgres user to run PostgreSQL as"; return 1; }
		chmod 755 "$dir" "$(dirname "$dir")" "$(dirname "$(dirname "$dir")")"
		chown postgres:postgres "$dir"
	fi
	"${PG_AS[@]}" "$PGBIN/initdb" -D "$dir/pgdata" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
		>>"$dir/../postgres.log" 2>&1 || { say "testservers: initdb failed; log: $dir/../postgres.log"; return 1; }
}

# ---------------------------------------------------------------- processes

# start_time PID: the process start time (field 22 of /proc/PID/stat), to
# tell a recorded process from a later one that reuses its PID.
start_time() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	set -- $stat
	echo "${20}"
}

# alive PID START: the recorded process still exists (zombies count as gone).
alive() {
	local want=$2 stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	set -- $stat
	[ "$1" != Z ] && [ "$1" != X ] && [ "${20}" = "$want" ]
}

# child_of PID: the first child process of PID.
child_of() {
	local parent=$1 kids p stat
	kids=$(cat "/proc/$parent/task/$parent/children" 2>/dev/null) || kids=
	if [ -n "$kids" ]; then
		set -- $kids
		echo "$1"
		return 0
	fi
	for p in /proc/[0-9]*; do
		stat=$(cat "$p/stat" 2>/dev/null) || continue
		stat=${stat##*) }
		set -- $stat
		if [ "$2" = "$parent" ]; then
			echo "${p#/proc/}"
			return 0
		fi
	done 2>/dev/null
	return 1
}

# listen_inodes PORT: inodes of TCP sockets listening on PORT (any address).
listen_inodes() {
	local hex
	printf -v hex '%04X' "$1"
	awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# port_busy PORT: something listens on PORT or accepts connections there.
port_busy() {
	[ -n "$(listen_inodes "$1")" ] && return 0
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# owns_port PID PORT: PID holds a socket listening on PORT.
owns_port() {
	local inodes ino fd link
	inodes=$(listen_inodes "$2")
	[ -n "$inodes" ] || return 1
	for fd in /proc/"$1"/fd/*; do
		link=$(readlink "$fd" 2>/dev/null) || continue
		for ino in $inodes; do
			[ "$link" = "socket:[$ino]" ] && return 0
		done
	done
	return 1
}

# free_port: prints a loopback port (run it in this shell, not in $(...), so
# USED_PORTS remembers it) that nothing listens on, outside the kernel's
# ephemeral range and not handed out earlier in this run.
free_port() {
	local lo hi min max port i
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { lo=32768 hi=60999; }
	if [ "$lo" -gt 12000 ]; then
		min=10000 max=$((lo - 1))
	elif [ "$hi" -lt 63000 ]; then
		min=$((hi + 1)) max=65535
	else
		min=1024 max=65535
	fi
	for ((i = 0; i < 200; i++)); do
		port=$((min + (RANDOM * 32768 + RANDOM) % (max - min + 1)))
		case " ${USED_PORTS:-} " in *" $port "*) continue ;; esac
		port_busy "$port" && continue
		USED_PORTS="${USED_PORTS:-} $port"
		echo "$port"
		return 0
	done
	die "no free loopback port found"
}

# launch NAME RUNDIR: starts server NAME on the port recorded in
# RUNDIR/NAME/port, wrapped in timeout; records its PIDs; sets SERVER_PID.
launch() {
	local name=$1 run=$2 port dir log tpid spid i
	port=$(cat "$run/$name/port")
	dir="$run/$name/data"
	log="$run/$name.log"
	mkdir -p "$dir"
	port_busy "$port" && {
		say "testservers: $(label "$name"): port $port is already in use by another process"
		return 1
	}
	server_argv "$name" "$port" "$dir"
	{
		printf '=== %s starting on 127.0.0.1:%s:' "$(date '+%F %T')" "$port"
		printf ' %q' "${ARGV[@]}"
		printf '\n'
	} >>"$log"
	(cd "$run" && exec timeout -k 10s "$TTL" "${ARGV[@]}") </dev/null >>"$log" 2>&1 &
	tpid=$!
	# Not a job of ours: no "Killed" notices when a test kills a server.
	disown "$tpid" 2>/dev/null || true
	spid=
	for ((i = 0; i < 400; i++)); do
		spid=$(child_of "$tpid") && break
		kill -0 "$tpid" 2>/dev/null || break
		sleep 0.01
	done
	if [ -z "$spid" ]; then
		say "testservers: $(label "$name") did not start; log: $log"
		tail -n 20 "$log" >&2
		return 1
	fi
	echo "$name timeout $tpid $(start_time "$tpid")" >>"$run/pids"
	echo "$name server $spid $(start_time "$spid")" >>"$run/pids"
	echo "$spid $(start_time "$spid")" >"$run/$name/pid"
	SERVER_PID=$spid
}

# wait_ready NAME RUNDIR: waits until the recorded server process listens on
# its port and accepts a TCP connection. Returns 2 if the process died.
wait_ready() {
	local name=$1 run=$2 port pid st deadline
	port=$(cat "$run/$name/port")
	read -r pid st <"$run/$name/pid"
	deadline=$((SECONDS + READY_TIMEOUT))
	while :; do
		alive "$pid" "$st" || return 2
		if owns_port "$pid" "$port" && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			[ "$name" != postgres ] && return 0
			"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres && return 0
		fi
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# stop_recorded RUNDIR: stops exactly the processes listed in RUNDIR/pids.
stop_recorded() {
	local run=$1 pid st i left
	[ -f "$run/pids" ] || return 0
	while read -r _ _ pid st; do
		alive "$pid" "$st" || continue
		kill -CONT "$pid" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null
	done <"$run/pids"
	for ((i = 0; i < 100; i++)); do
		left=0
		while read -r _ _ pid st; do
			alive "$pid" "$st" && left=1
		done <"$run/pids"
		[ "$left" = 0 ] && return 0
		sleep 0.05
	done
	while read -r _ _ pid st; do
		alive "$pid" "$st" && kill -KILL "$pid" 2>/dev/null
	done <"$run/pids"
	return 0
}

# ---------------------------------------------------------------- restart mode

if [ "${1:-}" = --restart ]; then
	[ $# -eq 3 ] || die "usage: $0 --restart NAME RUNDIR"
	name=$2 run=$3
	[ -f "$run/$name/port" ] || die "no server $name recorded in $run"
	launch "$name" "$run" || exit 1
	wait_ready "$name" "$run"
	case $? in
	0)
		echo "$SERVER_PID"
		exit 0
		;;
	1) say "testservers: $(label "$name") not ready within ${READY_TIMEOUT}s after restart; log: $run/$name.log" ;;
	*) say "testservers: $(label "$name") exited during restart (is the old one still running?); log: $run/$name.log" ;;
	esac
	tail -n 20 "$run/$name.log" >&2
	exit 1
fi

# ---------------------------------------------------------------- main

if [ "${1:-}" = -- ]; then shift; fi
if [ $# -eq 0 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	say "usage: $0 -- CMD ARGS..."
	exit 2
fi

# Without a standard input (closed fd 0) give the command /dev/null.
(exec 3<&0) 2>/dev/null || exec </dev/null

RUN=$(mktemp -d "${TMPDIR:-/tmp}/eventsourcing-testservers.XXXXXX") || die "cannot create temp dir"
: >"$RUN/pids"
STATUS=1
STARTED=0

cleanup() {
	local rc=$? name
	trap '' INT TERM HUP
	[ "$STARTED" = 1 ] && rc=$STATUS
	if [ "$rc" != 0 ] && [ "$STARTED" = 1 ]; then
		for name in "${SERVERS[@]}"; do
			[ -s "$RUN/$name.log" ] || continue
			say "--- $(label "$name") log (last 20 lines of $RUN/$name.log):"
			tail -n 20 "$RUN/$name.log" >&2
		done
	fi
	stop_recorded "$RUN"
	if [ "${EVENTSOURCING_TESTSERVERS_KEEP:-}" = 1 ]; then
		say "testservers: kept $RUN"
	else
		rm -rf "$RUN"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'STATUS=130; exit 130' INT
trap 'STATUS=143; exit 143' TERM
trap 'STATUS=129; exit 129' HUP

# ---- install (serialized across concurrent runs)

install_all() {
	local log="$RUN/install.log" gobin stamp want
	mkdir -p "$BIN"
	exec 9>"$STATE/install.lock"
	flock -w 900 9 || die "timed out waiting for $STATE/install.lock"

	if ! command -v redis-server >/dev/null 2>&1; then
		[ "$(id -u)" = 0 ] || die "redis-server is not installed and we are not root (apt-get install redis-server)"
		say "testservers: installing redis-server (apt-get)"
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; } >>"$log" 2>&1 ||
			{ tail -n 30 "$log" >&2; die "apt-get install redis-server failed"; }
	fi

	if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
		[ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and we are not root (apt-get install postgresql)"
		say "testservers: installing PostgreSQL (apt-get)"
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >>"$log" 2>&1 ||
			{ tail -n 30 "$log" >&2; die "apt-get install postgresql failed"; }
	fi

	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		die "node and npm are required for dynalite"
	fi
	stamp="$TOOLS/node_modules/.eventsourcing-testservers.lock-sha256"
	want=$(sha256sum "$TOOLS/package-lock.json" | cut -d' ' -f1)
	if [ ! -f "$TOOLS/node_modules/dynalite/cli.js" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
		(cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error) >>"$log" 2>&1 ||
			{ tail -n 30 "$log" >&2; die "npm ci failed"; }
		echo "$want" >"$stamp"
	fi

	gobin=$(command -v go 2>/dev/null) || gobin=/usr/local/go/bin/go
	[ -x "$gobin" ] || die "go is not installed"
	if [ ! -x "$BIN/ferretdb" ] || [ ! -x "$BIN/natsserver" ]; then
		say "testservers: building server launchers (a cold build takes a few minutes)"
	fi
	(cd "$TOOLS" && GOWORK=off GOFLAGS=-buildvcs=false "$gobin" build -o "$BIN/" ./cmd/ferretdb ./cmd/natsserver) >>"$log" 2>&1 ||
		{ tail -n 30 "$log" >&2; die "go build of tools/testservers failed"; }

	flock -u 9
	exec 9>&-
}
install_all
PGBIN=$(pg_bin)

# ---- start

for name in "${SERVERS[@]}"; do
	mkdir -p "$RUN/$name"
	free_port >"$RUN/$name/port" || exit 1
	launch "$name" "$RUN" || exit 1
done

for name in "${SERVERS[@]}"; do
	attempt=1
	while :; do
		wait_ready "$name" "$RUN"
		rc=$?
		[ "$rc" = 0 ] && break
		if [ "$rc" = 2 ] && [ "$attempt" -lt 3 ]; then
			# Died early (most likely lost a race for its port): new port, once more.
			attempt=$((attempt + 1))
			free_port >"$RUN/$name/port" || exit 1
					launch "$name" "$RUN" || exit 1
			continue
		fi
		if [ "$rc" = 1 ]; then
			say "testservers: $(label "$name") did not accept connections within ${READY_TIMEOUT}s; log: $RUN/$name.log"
		else
			say "testservers: $(label "$name") exited during startup; log: $RUN/$name.log"
		fi
		tail -n 20 "$RUN/$name.log" >&2
		exit 1
	done
	port=$(cat "$RUN/$name/port")
	read -r pid _ <"$RUN/$name/pid"
	url=$(server_url "$name" "$port")
	upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
	case $name in
	mongo) export EVENTSOURCING_MONGO_URI="$url" ;;
	dynamodb) export EVENTSOURCING_DYNAMODB_ENDPOINT="$url" ;;
	redis) export EVENTSOURCING_REDIS_ADDR="$url" ;;
	nats) export EVENTSOURCING_NATS_URL="$url" ;;
	postgres) export EVENTSOURCING_POSTGRES_URL="$url" ;;
	esac
	export "EVENTSOURCING_${upper}_PID=$pid"
	printf -v restart '%q --restart %q %q' "$SELF" "$name" "$RUN"
	export "EVENTSOURCING_${upper}_RESTART=$restart"
	say "$(label "$name") ready at $url pid $pid"
done

export EVENTSOURCING_REQUIRE_SERVERS=1
export EVENTSOURCING_TESTSERVERS_DIR="$RUN"

# ---- run

# The command runs as a background child (so a signal sent to this script alone
# is handled at once) with SIGINT/SIGQUIT reset to their defaults and stdin kept,
# so it behaves as if it ran in the foreground.
STARTED=1
env --default-signal=INT,QUIT "$@" <&0 &
CMD_PID=$!
GOT_SIGNAL=
forward() {
	GOT_SIGNAL=$1
	kill -"$2" "$CMD_PID" 2>/dev/null
}
trap 'forward 130 INT' INT
trap 'forward 143 TERM' TERM
trap 'forward 129 HUP' HUP
while :; do
	wait "$CMD_PID"
	rc=$?
	kill -0 "$CMD_PID" 2>/dev/null || break
done
STATUS=$rc
# Interrupted but the command still exited 0: do not report success.
[ -n "$GOT_SIGNAL" ] && [ "$STATUS" = 0 ] && STATUS=$GOT_SIGNAL
exit "$STATUS"
