#!/usr/bin/env bash
# Real single-node Apache Kafka (KRaft, combined broker+controller) for millstream's tests.
#
#   broker.sh fetch  [--version V]
#       Download kafka_2.13 V and its runtime jars with Maven (once; cached and reused offline).
#   broker.sh start  [--port P] [--controller-port C] [--dir D] [--version V] [--watch-pid PID] [--timeout S]
#       Format KRaft storage (first start of D only) and start the broker on 127.0.0.1; wait until it
#       serves requests; print the bootstrap address ("127.0.0.1:P") on stdout. Starting an existing,
#       stopped D again reuses its ports and data (a broker restart). --watch-pid: kill the broker when
#       that process dies (so a killed test run leaves no stray java behind).
#   broker.sh stop   [--dir D] [--kill] [--keep]
#       Stop the broker (SIGTERM, SIGKILL after a grace period; --kill: SIGKILL at once, like a crash)
#       and delete D, unless --keep (keep data and ports for a later start).
#   broker.sh status [--dir D]
#       Print "running BOOTSTRAP pid N" (exit 0) or "stopped" (exit 3).
#
# Environment: MILLSTREAM_CACHE (default ~/.cache/millstream; jars go to kafka-V/libs below it),
# MILLSTREAM_KAFKA_VERSION (default 3.9.2), MILLSTREAM_KAFKA_DIR (default D), KAFKA_JVM_OPTS (extra JVM flags).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${MILLSTREAM_KAFKA_VERSION:-3.9.2}"
CACHE_ROOT="${MILLSTREAM_CACHE:-${HOME}/.cache/millstream}"
DIR="${MILLSTREAM_KAFKA_DIR:-${TMPDIR:-/tmp}/millstream-kafka-$(id -u)}"
PORT=""
CONTROLLER_PORT=""
WATCH_PID=""
TIMEOUT=90
KILL=0
KEEP=0
MARKER=".millstream-kafka"

log() { echo "broker.sh: $*" >&2; }
die() { log "$*"; exit 1; }

libs_dir() { echo "${CACHE_ROOT}/kafka-${VERSION}/libs"; }

# The cache is complete when every jar named in its manifest is present (the manifest is written last).
cache_complete() {
    local libs manifest jar
    libs="$(libs_dir)"
    manifest="${libs}/.complete"
    [[ -s "${manifest}" ]] || return 1
    while IFS= read -r jar; do
        [[ -s "${libs}/${jar}" ]] || return 1
    done <"${manifest}"
}

run_maven() {
    # $1: output directory; remaining: extra Maven flags.
    local out="$1"
    shift
    local -a props=("-Dkafka.version=${VERSION}")
    # Kafka 4 logs through log4j2 instead of log4j 1 (see the profiles in pom.xml).
    [[ "${VERSION}" == 3.* ]] || props+=("-Dkafka.log4j2")
    # Some Maven builds print colour resets even in batch mode; strip them from the log.
    mvn -q -B -Dstyle.color=never "$@" -f "${HERE}/pom.xml" "${props[@]}" \
        dependency:copy-dependencies "-DoutputDirectory=${out}" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
}

cmd_fetch() {
    command -v java >/dev/null || die "java not found on PATH (Kafka needs Java 17+)"
    if cache_complete; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn (Maven) not found on PATH; it is needed once to fetch Kafka ${VERSION}"
    local base libs tmp started
    base="${CACHE_ROOT}/kafka-${VERSION}"
    libs="$(libs_dir)"
    mkdir -p "${base}"
    # Serialise concurrent fetches (parallel test runs) on one lock; the winner fills the cache.
    exec 9>"${base}/.fetch.lock"
    flock 9
    if cache_complete; then
        exec 9>&-
        return 0
    fi
    started=$(date +%s)
    tmp="$(mktemp -d "${base}/libs.tmp.XXXXXX")"
    log "fetching Kafka ${VERSION} with Maven into ${libs}"
    # Offline first: a warm ~/.m2 needs no network. Then online, and once more after a pause,
    # because a fresh CI machine's first download is where transient network errors happen.
    if ! run_maven "${tmp}" -o 2>/dev/null; then
        if ! run_maven "${tmp}"; then
            log "Maven failed; retrying once in 5 s"
            sleep 5
            run_maven "${tmp}" || { rm -rf "${tmp}"; die "Maven could not fetch Kafka ${VERSION}"; }
        fi
    fi
    [[ -s "${tmp}/kafka_2.13-${VERSION}.jar" ]] || { rm -rf "${tmp}"; die "kafka_2.13-${VERSION}.jar missing after Maven"; }
    (cd "${tmp}" && ls -1 -- *.jar) >"${tmp}/.complete"
    chmod 755 "${tmp}"
    # New jars invalidate any class-data archive made from the old ones.
    rm -rf "${libs}" "${base}"/cds-*.jsa
    mv "${tmp}" "${libs}"
    exec 9>&-
    log "fetched Kafka ${VERSION} ($(wc -l <"${libs}/.complete") jars) in $(($(date +%s) - started)) s"
}

# One archive per Kafka version and JVM binary (an archive only works with the JVM that wrote it).
cds_archive() {
    local jvm_key
    jvm_key="$(readlink -f "$(command -v java)" | cksum | cut -d' ' -f1)"
    echo "${CACHE_ROOT}/kafka-${VERSION}/cds-${jvm_key}.jsa"
}

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        port_open "${p}" || { echo "${p}"; return; }
    done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Kafka cluster ids are 16 random bytes in URL-safe base64 without padding; Kafka rejects a leading '-'.
random_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "${id}" == -* ]] || { echo "${id}"; return; }
    done
}

# Whether the process still holds resources. The broker is reparented when start returns, and
# the adopter may be slow to reap (or, in some containers, never reaps), so an exited broker can
# linger as a zombie and kill -0 alone would count it as running. Conversely, after SIGKILL the
# thread-group leader turns zombie while other JVM threads are still exiting and holding the
# listening sockets, so a zombie leader with live threads still counts as alive.
alive() {
    local state tasks
    if [[ -r "/proc/$1/stat" ]]; then
        state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
        [[ -n "${state}" ]] || return 1
        [[ "${state}" == Z ]] || return 0
        tasks=("/proc/$1/task/"*)
        [[ ${#tasks[@]} -gt 1 ]]
        return
    fi
    state="$(ps -p "$1" -o stat= 2>/dev/null)" || return 1
    [[ -n "${state}" && "${state}" != Z* ]]
}

# Whether process $1's full command line contains $2. /proc avoids ps, which cuts its output to
# $COLUMNS (pytest exports COLUMNS=80) unless told -ww.
is_broker() {
    if [[ -r "/proc/$1/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
    else
        ps -ww -p "$1" -o args= 2>/dev/null | grep -qF -- "$2"
    fi
}

broker_pid() {
    local pid
    [[ -s "${DIR}/broker.pid" ]] || return 1
    pid="$(cat "${DIR}/broker.pid")"
    # The pid must still be our broker, not an unrelated process that reused the number.
    is_broker "${pid}" "kafka.Kafka ${DIR}/server.properties" || return 1
    echo "${pid}"
}

write_configs() {
    cat >"${DIR}/server.properties" <<EOF
# Written by tests/infra/kafka/broker.sh: single-node KRaft broker+controller on loopback, for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${DIR}/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
# After a crash (stop --kill) the controller keeps the dead incarnation registered until its session
# expires; the default 9 s would make every crash-restart test wait that long.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
EOF
    # Kafka 3 reads log4j 1 config, Kafka 4 log4j2; both log to server.log in D.
    cat >"${DIR}/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${DIR}/server.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    cat >"${DIR}/log4j2.properties" <<EOF
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=${DIR}/server.log
appender.file.append=true
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
EOF
}

started_count() { grep -c 'Kafka Server started' "${DIR}/server.log" 2>/dev/null || true; }

cmd_start() {
    local started_at pid before deadline libs cp cluster_id
    started_at=$(date +%s%N)
    if pid="$(broker_pid)"; then
        die "a broker is already running from ${DIR} (pid ${pid}); stop it first"
    fi
    cmd_fetch
    libs="$(libs_dir)"
    cp="${libs}/*"
    mkdir -p "${DIR}"
    touch "${DIR}/${MARKER}"
    # A restart of an existing directory keeps its ports unless told otherwise.
    if [[ -s "${DIR}/broker.env" ]]; then
        local saved_port saved_cport
        saved_port="$(sed -n 's/^PORT=//p' "${DIR}/broker.env")"
        saved_cport="$(sed -n 's/^CONTROLLER_PORT=//p' "${DIR}/broker.env")"
        PORT="${PORT:-${saved_port}}"
        CONTROLLER_PORT="${CONTROLLER_PORT:-${saved_cport}}"
    fi
    PORT="${PORT:-$(free_port)}"
    CONTROLLER_PORT="${CONTROLLER_PORT:-$(free_port)}"
    while [[ "${CONTROLLER_PORT}" == "${PORT}" ]]; do CONTROLLER_PORT="$(free_port)"; done
    # A broker just killed may hold its ports for a moment longer; give them a few seconds.
    local wait_until=$(($(date +%s) + 10))
    while port_open "${PORT}" || port_open "${CONTROLLER_PORT}"; do
        [[ $(date +%s) -lt ${wait_until} ]] || die "port ${PORT} or ${CONTROLLER_PORT} is already in use"
        sleep 0.05
    done
    printf 'PORT=%s\nCONTROLLER_PORT=%s\nBOOTSTRAP=127.0.0.1:%s\nVERSION=%s\n' \
        "${PORT}" "${CONTROLLER_PORT}" "${PORT}" "${VERSION}" >"${DIR}/broker.env"
    write_configs

    # Fast JVM start matters more than peak throughput for tests: serial GC, C1 only, small heap.
    local -a jvm=(-Xmx512m -Xms64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData
        -Djava.awt.headless=true -Dlog4j.configuration="file:${DIR}/log4j.properties"
        -Dlog4j2.configurationFile="${DIR}/log4j2.properties")
    # Class-data sharing: the first broker dumps the classes it loaded into an archive at exit (see
    # cmd_stop); later starts map it and skip most class loading (about 1.3 s of a 3 s start).
    local jsa
    jsa="$(cds_archive)"
    if [[ -s "${jsa}" ]]; then
        jvm+=(-XX:SharedArchiveFile="${jsa}")
    elif [[ -z "${MILLSTREAM_KAFKA_NO_CDS:-}" ]]; then
        jvm+=(-XX:ArchiveClassesAtExit="${DIR}/cds.jsa.tmp")
        echo "${jsa}" >"${DIR}/cds.target"
    fi
    # shellcheck disable=SC2206
    [[ -z "${KAFKA_JVM_OPTS:-}" ]] || jvm+=(${KAFKA_JVM_OPTS})

    if [[ ! -s "${DIR}/data/meta.properties" ]]; then
        cluster_id="$(random_cluster_id)"
        # The formatter must not dump the archive (it would be the wrong class list): drop that flag.
        java "${jvm[@]/-XX:ArchiveClassesAtExit=*/-Xshare:auto}" -cp "${cp}" kafka.tools.StorageTool format -t "${cluster_id}" \
            -c "${DIR}/server.properties" >>"${DIR}/console.log" 2>&1 \
            || { tail -20 "${DIR}/console.log" >&2; die "formatting KRaft storage in ${DIR}/data failed"; }
    fi

    before="$(started_count)"
    # Detached from our stdout/stderr so a caller capturing them does not wait for the broker to exit.
    nohup java "${jvm[@]}" -cp "${cp}" kafka.Kafka "${DIR}/server.properties" \
        </dev/null >>"${DIR}/console.log" 2>&1 &
    pid=$!
    echo "${pid}" >"${DIR}/broker.pid"
    if [[ -n "${WATCH_PID}" ]]; then
        # Watchdog: if the owner (e.g. pytest) dies without stopping us, crash-stop the broker and
        # delete its directory. It exits by itself once the broker is no longer ours (stopped).
        nohup bash -c "$(declare -f is_broker)"'
                       while kill -0 "$1" 2>/dev/null; do is_broker "$2" "$3" || exit 0; sleep 0.5; done
                       rm -f "$5/watchdog.pid"
                       exec bash "$4" stop --kill --dir "$5"' \
            watchdog "${WATCH_PID}" "${pid}" "kafka.Kafka ${DIR}/server.properties" "${HERE}/broker.sh" "${DIR}" \
            </dev/null >/dev/null 2>&1 &
        echo $! >"${DIR}/watchdog.pid"
    fi

    # Ready means: the broker logged that it started (after unfencing) and its port accepts connections.
    deadline=$(($(date +%s) + TIMEOUT))
    until [[ "$(started_count)" -gt "${before}" ]] && port_open "${PORT}"; do
        if ! alive "${pid}"; then
            tail -30 "${DIR}/console.log" >&2 || true
            tail -30 "${DIR}/server.log" >&2 || true
            die "broker exited during start (logs in ${DIR})"
        fi
        if [[ $(date +%s) -ge ${deadline} ]]; then
            kill -9 "${pid}" 2>/dev/null || true
            tail -30 "${DIR}/server.log" >&2 || true
            die "broker not ready after ${TIMEOUT} s (logs in ${DIR})"
        fi
        sleep 0.05
    done
    log "Kafka ${VERSION} up on 127.0.0.1:${PORT} (pid ${pid}, dir ${DIR}) in $((($(date +%s%N) - started_at) / 1000000)) ms"
    echo "127.0.0.1:${PORT}"
}

cmd_stop() {
    local pid deadline clean_exit=0
    if pid="$(broker_pid)"; then
        if [[ ${KILL} -eq 1 ]]; then
            kill -9 "${pid}" 2>/dev/null || true
        else
            kill -TERM "${pid}" 2>/dev/null || true
            deadline=$(($(date +%s) + 20))
            while alive "${pid}" && [[ $(date +%s) -lt ${deadline} ]]; do sleep 0.02; done
            if alive "${pid}"; then
                kill -9 "${pid}" 2>/dev/null || true
                log "broker ${pid} ignored SIGTERM for 20 s; killed"
            else
                clean_exit=1
            fi
        fi
        # Wait until the process is gone so a restart can bind the same ports and lock the same log dir.
        while alive "${pid}"; do sleep 0.02; done
    fi
    # Publish the class-data archive written at a clean exit; rename is atomic, so concurrent
    # runs never map a half-written file.
    if [[ ${clean_exit} -eq 1 && ${KILL} -eq 0 && -s "${DIR}/cds.jsa.tmp" && -s "${DIR}/cds.target" ]]; then
        mv -f "${DIR}/cds.jsa.tmp" "$(cat "${DIR}/cds.target")" 2>/dev/null || true
    fi
    rm -f "${DIR}/cds.jsa.tmp" "${DIR}/cds.target"
    if [[ -s "${DIR}/watchdog.pid" ]]; then
        kill "$(cat "${DIR}/watchdog.pid")" 2>/dev/null || true
    fi
    rm -f "${DIR}/broker.pid" "${DIR}/watchdog.pid"
    if [[ ${KEEP} -eq 0 && -e "${DIR}/${MARKER}" ]]; then
        rm -rf "${DIR}"
    fi
}

cmd_status() {
    local pid
    if pid="$(broker_pid)"; then
        echo "running $(sed -n 's/^BOOTSTRAP=//p' "${DIR}/broker.env") pid ${pid}"
        return 0
    fi
    echo "stopped"
    return 3
}

[[ $# -ge 1 ]] || die "usage: broker.sh fetch|start|stop|status [options] (see the header of this script)"
COMMAND="$1"
shift
while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) PORT="$2"; shift 2 ;;
        --controller-port) CONTROLLER_PORT="$2"; shift 2 ;;
        --dir) DIR="$2"; shift 2 ;;
        --version) VERSION="$2"; shift 2 ;;
        --watch-pid) WATCH_PID="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --kill) KILL=1; shift ;;
        --keep) KEEP=1; shift ;;
        *) die "unknown option: $1" ;;
    esac
done
DIR="$(mkdir -p "$(dirname "${DIR}")" && cd "$(dirname "${DIR}")" && pwd)/$(basename "${DIR}")"

case "${COMMAND}" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) die "unknown command: ${COMMAND} (fetch|start|stop|status)" ;;
esac
