#!/usr/bin/env bash
# linux-volatile-data.sh: collect the volatile state of a Linux instance
# (processes, sockets, logins, modules, mounts, persistence, histories, recent
# changes), pack it as a tar.gz and upload it through a presigned PUT. Run by
# the Responder-LinuxVolatileData document, which embeds responder-common.sh
# ahead of this file.
#
# Configuration (environment, set by the document from its parameters):
#   RESPONDER_CASE_ID      case identifier, only recorded
#   RESPONDER_ARCHIVE_URL  presigned PUT for the archive (tar.gz)
#   RESPONDER_RESULT_URL   presigned PUT for the JSON report, or none
#   RESPONDER_RECENT_DAYS  window for "recently modified" files (1..90)
# The documents deliver the two URLs sealed (RESPONDER_SEALING_KEY_ID,
# RESPONDER_SEALED, RESPONDER_SEALED_VARS), opened by rc_unseal; run by hand,
# the script takes them in clear.
#
# Every section is a file under collection/ in the archive, listed in
# collection/index.json with the command that made it, its exit status, size
# and SHA-256. A section whose tool is missing is recorded as "unavailable";
# one that fails is recorded as "failed" with its error; neither stops the
# collection. JSON sections: system, processes, users, sockets, modules,
# mounts, recent_files, files (copies of cron, systemd, history and other
# persistence files under collection/files/).
# shellcheck shell=bash source-path=SCRIPTDIR

if [[ $(type -t rc_json_q) != function ]]; then
	# shellcheck source=responder-common.sh
	. "$(dirname -- "${BASH_SOURCE[0]}")/responder-common.sh"
fi

VD_SECTIONS=()
VD_MAX_FILE=$((32 * 1048576))      # larger files are copied as their last 32 MiB
VD_MAX_HASH=$((1024 * 1048576))    # executables larger than this are not hashed

vd_timeout() {
	if rc_have timeout; then timeout "$@"; else shift; "$@"; fi
}

# vd_section NAME FILE DESCRIPTION FUNCTION [ARG...] runs FUNCTION with its
# stdout in collection/FILE and records the outcome. FUNCTION returns 127 when
# the tool it needs is missing.
vd_section() {
	local name=$1 file=$2 what=$3 rc=0 status=ok bytes sha err out t0 secs=null
	shift 3
	t0=${EPOCHREALTIME:-}
	"$@" >"$VD_OUT/$file" 2>"$VD_WORK/section.err" || rc=$?
	[[ -n $t0 ]] && secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	if ((rc == 127)); then status=unavailable; elif ((rc != 0)); then status=failed; fi
	bytes=$(stat -c %s -- "$VD_OUT/$file")
	sha=$(rc_sha256 <"$VD_OUT/$file")
	err=$(tail -c 1000 -- "$VD_WORK/section.err")
	rc_json_q "$name" && out="{\"name\":$REPLY"
	rc_json_q "collection/$file" && out+=",\"file\":$REPLY"
	rc_json_q "$what" && out+=",\"source\":$REPLY,\"status\":\"$status\",\"exit_status\":$rc"
	out+=",\"seconds\":$secs,\"bytes\":$bytes,\"sha256\":\"$sha\""
	[[ -n $err ]] && rc_json_q "$err" && out+=",\"stderr\":$REPLY"
	VD_SECTIONS+=("$out}")
}

# vd_cmd COMMAND [ARG...] runs a command that may be missing, bounded in time.
vd_cmd() {
	rc_have "$1" || { echo "$1: not installed" >&2; return 127; }
	vd_timeout 120 "$@"
}

# vd_cmds "CMD ARGS" ... runs several optional commands into one text section,
# each under a header line; fails only when none of them could run.
vd_cmds() {
	local c ran=0 words
	for c in "$@"; do
		read -r -a words <<<"$c"
		rc_have "${words[0]}" || continue
		printf '### %s\n' "$c"
		vd_timeout 120 "${words[@]}" 2>&1 && ran=1
		echo
	done
	((ran)) || return 127
}

vd_system() {
	local up btime='' k v
	while read -r k v; do [[ $k == btime ]] && btime=$v && break; done </proc/stat
	read -r up _ </proc/uptime
	rc_host_json
	printf '{"collected_at":"%s","host":%s,"boot_time_epoch":%s,"uptime_seconds":%s' \
		"$(rc_now)" "$REPLY" "${btime:-null}" "${up%.*}"
	rc_json_q "$(date +%Z%z)" && printf ',"timezone":%s' "$REPLY"
	rc_json_q "$(cat /proc/version)" && printf ',"kernel_version":%s' "$REPLY"
	rc_json_q "$(cat /proc/cmdline)" && printf ',"kernel_cmdline":%s' "$REPLY"
	printf ',"kernel_tainted":%s' "$(cat /proc/sys/kernel/tainted)"
	rc_json_q "$(cat /etc/ld.so.preload 2>/dev/null)" && printf ',"ld_so_preload":%s}\n' "$REPLY"
}

# vd_processes prints a JSON array with one object per process: identity,
# owner, command line, executable (also when deleted) and its SHA-256.
# Links, file identities and hashes are gathered for all processes in one call
# each; the per-process loop only reads /proc with shell builtins.
vd_processes() {
	local dir pid line rest f comm uid k v deleted key hash sep='' a argv btime=0 clk path
	local -A users=() exes=() cwds=() keys=() rep=() hashes=()
	local -a args=() tohash=()
	while IFS=: read -r k _ v _; do users[$v]=$k; done </etc/passwd
	while read -r k v; do [[ $k == btime ]] && btime=$v && break; done </proc/stat
	clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
	while IFS=$'\t' read -r -d '' dir k v; do
		pid=${dir#/proc/}
		if [[ $k == exe ]]; then exes[$pid]=$v; else cwds[$pid]=$v; fi
	done < <(find /proc/[0-9]* -maxdepth 1 \( -name exe -o -name cwd \) -printf '%h\t%f\t%l\0' 2>/dev/null)
	# The executable is read through /proc/<pid>/exe, so a binary deleted from
	# disk is still hashed. Identical files (device, inode, size, mtime) are
	# hashed once.
	while IFS='|' read -r path key; do
		pid=${path#/proc/}
		pid=${pid%/exe}
		keys[$pid]=$key
		v=${key%:*}
		v=${v##*:}
		if [[ -z ${rep[$key]:-} ]] && ((v <= VD_MAX_HASH)); then
			rep[$key]=$path
			tohash+=("$path")
		fi
	done < <(stat -L -c '%n|%d:%i:%s:%Y' /proc/[0-9]*/exe 2>/dev/null)
	if ((${#tohash[@]} > 0)); then
		while read -r hash path; do
			path=${path#\*}
			pid=${path#/proc/}
			pid=${pid%/exe}
			[[ $hash =~ ^[a-f0-9]{64}$ && -n ${keys[$pid]:-} ]] && hashes[${keys[$pid]}]=$hash
		done < <(if rc_have sha256sum; then sha256sum -- "${tohash[@]}"; else openssl dgst -sha256 -r "${tohash[@]}"; fi 2>/dev/null)
	fi
	printf '['
	for dir in /proc/[0-9]*; do
		pid=${dir#/proc/}
		read -r line 2>/dev/null <"$dir/stat" || continue
		rest=${line##*) }
		read -r -a f <<<"$rest"
		read -r comm 2>/dev/null <"$dir/comm" || comm=''
		uid=''
		while read -r k v _; do [[ $k == Uid: ]] && uid=$v && break; done 2>/dev/null <"$dir/status"
		args=()
		mapfile -d '' -t args 2>/dev/null <"$dir/cmdline"
		printf '%s{"pid":%s,"ppid":%s,"state":"%s"' "$sep" "$pid" "${f[1]:-null}" "${f[0]:-?}"
		sep=,
		rc_json_q "$comm" && printf ',"name":%s' "$REPLY"
		rc_json_num "$uid" && printf ',"uid":%s' "$REPLY"
		rc_json_q "${users[$uid]:-}" && printf ',"user":%s' "$REPLY"
		if [[ ${f[19]:-} =~ ^[0-9]+$ ]]; then printf ',"start_time_epoch":%s' $((btime + f[19] / clk)); fi
		argv='' a=''
		for v in "${args[@]}"; do rc_json_q "$v"; argv+="$a$REPLY"; a=,; done
		printf ',"cmdline":[%s]' "$argv"
		rc_json_q "${cwds[$pid]:-}" && printf ',"cwd":%s' "$REPLY"
		if [[ -z ${exes[$pid]:-} ]]; then
			printf ',"kernel_thread":%s}' "$([[ ${#args[@]} -eq 0 ]] && echo true || echo false)"
			continue
		fi
		deleted=false
		[[ ${exes[$pid]} == *" (deleted)" ]] && deleted=true
		rc_json_q "${exes[$pid]}" && printf ',"exe":%s,"exe_deleted":%s' "$REPLY" "$deleted"
		hash=${hashes[${keys[$pid]:-none}]:-}
		if [[ -n $hash ]]; then printf ',"exe_sha256":"%s"}' "$hash"; else printf ',"exe_sha256":null}'; fi
	done
	printf ']\n'
}

vd_users() {
	local name pw uid gid gecos home shell sep='' state
	local -A shadow=()
	if [[ -r /etc/shadow ]]; then
		# Only whether a password is set or locked: never the hashes.
		while IFS=: read -r name pw _; do
			case $pw in '') state=empty ;; '!'* | '*'*) state=locked ;; *) state='set' ;; esac
			shadow[$name]=$state
		done </etc/shadow
	fi
	printf '['
	while IFS=: read -r name pw uid gid gecos home shell; do
		[[ -z $name || $name == '#'* ]] && continue
		rc_json_q "$name" && printf '%s{"name":%s' "$sep" "$REPLY"
		sep=,
		rc_json_num "$uid" && printf ',"uid":%s' "$REPLY"
		rc_json_num "$gid" && printf ',"gid":%s' "$REPLY"
		rc_json_q "$gecos" && printf ',"gecos":%s' "$REPLY"
		rc_json_q "$home" && printf ',"home":%s' "$REPLY"
		rc_json_q "$shell" && printf ',"shell":%s' "$REPLY"
		rc_json_q "${shadow[$name]:-unknown}" && printf ',"password":%s}' "$REPLY"
	done </etc/passwd
	printf ']\n'
}

vd_ip4() {
	local h=$1
	printf -v REPLY '%d.%d.%d.%d' "0x${h:6:2}" "0x${h:4:2}" "0x${h:2:2}" "0x${h:0:2}"
}

vd_ip6() {
	local h=$1 i w b='' out='' sep=''
	for ((i = 0; i < 32; i += 8)); do
		w=${h:i:8}
		b+=${w:6:2}${w:4:2}${w:2:2}${w:0:2}
	done
	for ((i = 0; i < 32; i += 4)); do
		printf -v w '%x' "0x${b:i:4}"
		out+=$sep$w
		sep=:
	done
	REPLY=$out
}

# vd_sockets prints a JSON array of the TCP, UDP and raw sockets in
# /proc/net (this network namespace) with the processes that own them.
vd_sockets() {
	local dir link inode pid proto file sl laddr raddr st _r uid _t sock lip lport rip rport
	local state pids names n sep='' fam
	local -A owners=() pnames=()
	local -a tcp_states=('' ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT1 FIN_WAIT2 TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN CLOSING NEW_SYN_RECV)
	while read -r dir link; do
		inode=${link#socket:[}
		inode=${inode%]}
		pid=${dir#/proc/}
		pid=${pid%/fd}
		[[ ,${owners[$inode]:-}, == *",$pid,"* ]] && continue
		owners[$inode]+=${owners[$inode]:+,}$pid
	done < <(find /proc/[0-9]*/fd -maxdepth 1 -lname 'socket:\[*' -printf '%h %l\n' 2>/dev/null)
	printf '['
	for proto in tcp tcp6 udp udp6 raw raw6; do
		file=/proc/net/$proto
		[[ -r $file ]] || continue
		fam=4
		[[ $proto == *6 ]] && fam=6
		while read -r sl laddr raddr st _r _t _ uid _ sock _; do
			[[ $sl == sl ]] && continue
			if ((fam == 4)); then
				vd_ip4 "${laddr%:*}"; lip=$REPLY
				vd_ip4 "${raddr%:*}"; rip=$REPLY
			else
				vd_ip6 "${laddr%:*}"; lip=$REPLY
				vd_ip6 "${raddr%:*}"; rip=$REPLY
			fi
			lport=$((16#${laddr#*:}))
			rport=$((16#${raddr#*:}))
			n=$((16#$st))
			if [[ $proto == tcp* ]]; then
				state=${tcp_states[n]:-UNKNOWN}
			elif ((n == 7)); then state=UNCONN; else state=ESTABLISHED; fi
			pids=${owners[$sock]:-}
			names=''
			if [[ -n $pids ]]; then
				local p nm a=''
				for p in ${pids//,/ }; do
					if [[ -z ${pnames[$p]:-} ]]; then
						read -r nm 2>/dev/null <"/proc/$p/comm" || nm='?'
						pnames[$p]=$nm
					fi
					rc_json_q "${pnames[$p]}"
					names+="$a$REPLY"
					a=,
				done
			fi
			printf '%s{"protocol":"%s","family":%d,"local_address":"%s","local_port":%d,"remote_address":"%s","remote_port":%d,"state":"%s","uid":%s,"inode":%s,"pids":[%s],"processes":[%s]}' \
				"$sep" "${proto%6}" "$fam" "$lip" "$lport" "$rip" "$rport" "$state" "${uid:-null}" "${sock:-0}" "$pids" "$names"
			sep=,
		done <"$file"
	done
	printf ']\n'
}

vd_modules() {
	local name size refs deps state addr taint sep=''
	printf '['
	while read -r name size refs deps state addr taint; do
		rc_json_q "$name" && printf '%s{"name":%s,"size":%s,"refcount":%s' "$sep" "$REPLY" "$size" "${refs/-/0}"
		rc_json_q "${deps%,}" && printf ',"used_by":%s' "$REPLY"
		rc_json_q "$state" && printf ',"state":%s' "$REPLY"
		rc_json_q "$taint" && printf ',"taint":%s}' "$REPLY"
		sep=,
		: "$addr"
	done </proc/modules
	printf ']\n'
}

vd_unescape() { printf -v REPLY '%b' "${1//\\/\\0}"; }

vd_mounts() {
	local dev mnt fs opts sep=''
	printf '['
	while read -r dev mnt fs opts _; do
		vd_unescape "$dev" && rc_json_q "$REPLY" && printf '%s{"device":%s' "$sep" "$REPLY"
		vd_unescape "$mnt" && rc_json_q "$REPLY" && printf ',"mount_point":%s' "$REPLY"
		rc_json_q "$fs" && printf ',"fs_type":%s' "$REPLY"
		rc_json_q "$opts" && printf ',"options":%s}' "$REPLY"
		sep=,
	done </proc/self/mounts
	printf ']\n'
}

# vd_json_records turns tab-separated records (paths last) into a JSON array
# of objects whose keys are given as arguments; a field named *_n is a number.
# Newlines in paths arrive as \036 (see vd_recent_files) and become \n.
vd_json_records() {
	awk -F '\t' -v keys="$*" '
	BEGIN {
		n = split(keys, k, " ")
		for (i = 1; i < 32; i++) ctl[sprintf("%c", i)] = sprintf("\\u%04x", i)
		printf "["
	}
	function q(s,   out, i, c) {
		gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\036/, "\\n", s); gsub(/\t/, "\\t", s)
		if (s ~ /[\001-\037]/) {
			out = ""
			for (i = 1; i <= length(s); i++) { c = substr(s, i, 1); out = out ((c in ctl) ? ctl[c] : c) }
			s = out
		}
		return "\"" s "\""
	}
	{
		# The last key takes the rest of the line (paths may hold tabs).
		rest = $0
		printf "%s{", (NR > 1 ? "," : "")
		for (i = 1; i <= n; i++) {
			if (i < n) { p = index(rest, "\t"); v = substr(rest, 1, p - 1); rest = substr(rest, p + 1) } else v = rest
			name = k[i]
			if (name ~ /_n$/) { sub(/_n$/, "", name); sub(/\..*/, "", v); printf "%s\"%s\":%s", (i > 1 ? "," : ""), name, (v == "" ? "null" : v) }
			else printf "%s\"%s\":%s", (i > 1 ? "," : ""), name, q(v)
		}
		printf "}"
	}
	END { print "]" }'
}

# vd_recent_files prints a JSON array of files and links in system and
# temporary directories modified in the last RESPONDER_RECENT_DAYS days,
# newest first, at most 20,000. find's own errors (unreadable directories) and
# the SIGPIPE that head's limit causes upstream do not fail the section: it runs
# in a subshell without pipefail, so only awk's status counts.
vd_recent_files() (
	set +o pipefail
	local d dirs=()
	for d in /etc /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin /lib /lib64 \
		/usr/lib /usr/lib64 /usr/local/lib /boot /root /opt /tmp /var/tmp /dev/shm \
		/var/spool/cron /var/spool/at /var/www; do
		[[ -d $d && ! -L $d ]] && dirs+=("$d")
	done
	find "${dirs[@]}" -xdev -mtime "-$RESPONDER_RECENT_DAYS" \( -type f -o -type l \) \
		-printf '%T@\t%s\t%m\t%U\t%G\t%y\t%p\0' 2>/dev/null | sort -z -r -n | head -z -n 20000 |
		tr '\n\0' '\036\n' | vd_json_records mtime_epoch_n size_n mode uid_n gid_n type path
)

# vd_copy_files copies persistence, scheduling, history and login files into
# collection/files/<original path> and prints their manifest (JSON array).
vd_copy_files() {
	local f dest size mtime sha sep='' truncated
	local -a list=()
	shopt -s nullglob dotglob
	list+=(/etc/passwd /etc/group /etc/hosts /etc/resolv.conf /etc/ld.so.preload /etc/rc.local
		/etc/crontab /etc/anacrontab /etc/cron.d/* /etc/cron.hourly/* /etc/cron.daily/* /etc/cron.weekly/*
		/etc/cron.monthly/* /var/spool/cron/* /var/spool/cron/crontabs/* /var/spool/at/*
		/etc/systemd/system/*.service /etc/systemd/system/*.timer /etc/systemd/system/*/*.service
		/run/systemd/system/*.service /etc/sudoers /etc/sudoers.d/* /etc/ssh/sshd_config
		/etc/profile /etc/profile.d/* /etc/bash.bashrc /etc/bashrc
		/root/.*history /root/.ssh/authorized_keys* /root/.bashrc /root/.profile /root/.config/systemd/user/*
		/home/*/.*history /home/*/.ssh/authorized_keys* /home/*/.bashrc /home/*/.profile
		/home/*/.config/systemd/user/*
		/var/log/auth.log /var/log/secure /var/log/wtmp /var/log/btmp /var/log/lastlog)
	# Unit files in the vendor directories only when they changed recently.
	while IFS='' read -r -d '' f; do list+=("$f"); done < <(find /usr/lib/systemd/system /lib/systemd/system \
		-maxdepth 1 -type f -mtime "-$RESPONDER_RECENT_DAYS" -print0 2>/dev/null)
	shopt -u nullglob dotglob
	printf '['
	for f in "${list[@]}"; do
		[[ -f $f && ! -L $f ]] || continue
		dest=$VD_OUT/files$f
		[[ -e $dest ]] && continue
		mkdir -p -- "${dest%/*}"
		size=$(stat -c %s -- "$f") || continue
		mtime=$(stat -c %Y -- "$f")
		truncated=false
		if ((size > VD_MAX_FILE)); then
			tail -c "$VD_MAX_FILE" -- "$f" >"$dest" || continue
			truncated=true
		else
			cp -p -- "$f" "$dest" || continue
		fi
		sha=$(rc_sha256 <"$dest")
		rc_json_q "$f" && printf '%s{"path":%s,"size":%s,"mtime_epoch":%s,"copied_sha256":"%s","truncated_to_tail":%s}' \
			"$sep" "$REPLY" "$size" "$mtime" "$sha" "$truncated"
		sep=,
	done
	printf ']\n'
}

vd_journal_logins() {
	rc_have journalctl || return 127
	vd_timeout 120 journalctl --no-pager -o short-iso --since "-${RESPONDER_RECENT_DAYS}d" \
		_COMM=sshd + _COMM=login + _COMM=su + _COMM=sudo + _COMM=systemd-logind | tail -n 20000
}

vd_main() {
	set -uo pipefail
	export LC_ALL=C
	umask 077
	local started status=failed err='' rc=1 core sep='' x bytes sha etag='' attempts=0 http=000
	started=$(rc_now)
	local unsealed=''
	if rc_sealed && ! rc_unseal; then unsealed=$RC_ERR; fi
	: "${RESPONDER_CASE_ID:=}" "${RESPONDER_ARCHIVE_URL:=}" "${RESPONDER_RESULT_URL:=none}" "${RESPONDER_RECENT_DAYS:=7}"
	if ! rc_workdir 0; then
		echo '{"schema":"responder.linux-volatile-data/1","status":"failed","error":"no writable working directory"}'
		return 1
	fi
	VD_WORK=$RC_WORK
	# shellcheck disable=SC2064 # expand now: the path is fixed
	trap "rm -rf -- '$VD_WORK'" EXIT
	VD_OUT=$VD_WORK/collection
	mkdir -p -- "$VD_OUT"

	if [[ -n $unsealed ]]; then err=$unsealed
	elif ! rc_valid_case_id "$RESPONDER_CASE_ID"; then err="invalid case ID"
	elif ! rc_valid_url "$RESPONDER_ARCHIVE_URL"; then err="archive URL is not a valid https URL"
	elif [[ $RESPONDER_RESULT_URL != none ]] && ! rc_valid_url "$RESPONDER_RESULT_URL"; then err="result URL is not a valid https URL"
	elif ! [[ $RESPONDER_RECENT_DAYS =~ ^[0-9]{1,2}$ ]] || ((RESPONDER_RECENT_DAYS < 1 || RESPONDER_RECENT_DAYS > 90)); then err="recent days must be 1 to 90"
	elif ! rc_have curl; then err="curl not found"
	fi

	if [[ -z $err ]]; then
		# Most volatile first.
		vd_section system system.json "/proc, uname, os-release" vd_system
		vd_section processes processes.json "/proc/<pid>/{stat,status,cmdline,exe,cwd}" vd_processes
		vd_section sockets sockets.json "/proc/net/{tcp,tcp6,udp,udp6,raw,raw6} + /proc/<pid>/fd" vd_sockets
		vd_section ss ss.txt "ss -tunape (netstat -tunape)" vd_cmds "ss -tunape" "netstat -tunapee"
		vd_section process_tree ps.txt "ps -eo ... --forest" vd_cmd ps -eo pid,ppid,user,lstart,etime,stat,args --forest
		vd_section open_files lsof.txt "lsof -nP" vd_cmd lsof -nP
		vd_section logins_current who.txt "who -a; w" vd_cmds "who -a" "w"
		vd_section logins_recent last.txt "last; lastb; lastlog; wtmpdb last" vd_cmds "last -F -w -x" "lastb -F -w" "lastlog" "wtmpdb last"
		vd_section logins_journal journal_logins.txt "journalctl (sshd, login, su, sudo, logind)" vd_journal_logins
		vd_section users users.json "/etc/passwd, /etc/shadow (password state only)" vd_users
		vd_section network network.txt "ip addr/route/neigh, iptables-save, nft" vd_cmds "ip addr" "ip route" "ip -6 route" "ip neigh" "iptables-save" "ip6tables-save" "nft list ruleset"
		vd_section modules modules.json "/proc/modules" vd_modules
		vd_section mounts mounts.json "/proc/self/mounts" vd_mounts
		vd_section systemd_units systemd.txt "systemctl list-units/list-unit-files/list-timers" vd_cmds "systemctl list-units --all --no-pager --plain" "systemctl list-unit-files --no-pager" "systemctl list-timers --all --no-pager"
		vd_section recent_files recent_files.json "find (system and temporary directories) -mtime -$RESPONDER_RECENT_DAYS" vd_recent_files
		vd_section files files.json "copies of cron, systemd, shell history, ssh, sudo, login files" vd_copy_files

		local i=0
		{
			printf '{"schema":"responder.linux-volatile-data/1"'
			rc_json_q "$RESPONDER_CASE_ID" && printf ',"case_id":%s,"sections":[' "$REPLY"
			for x in "${VD_SECTIONS[@]}"; do printf '%s%s' "$sep" "$x"; sep=,; i=$((i + 1)); done
			printf ']}\n'
		} >"$VD_OUT/index.json"
		if ! tar -C "$VD_WORK" -czf "$VD_WORK/archive.tar.gz" collection 2>"$VD_WORK/tar.err"; then
			err="packing the archive failed: $(tail -c 300 "$VD_WORK/tar.err")"
		fi
	fi
	if [[ -z $err ]]; then
		bytes=$(stat -c %s -- "$VD_WORK/archive.tar.gz")
		sha=$(rc_sha256 <"$VD_WORK/archive.tar.gz")
		if rc_put "$RESPONDER_ARCHIVE_URL" "$VD_WORK/archive.tar.gz" application/gzip; then
			status=succeeded rc=0 etag=$RC_ETAG
		else
			err="uploading the archive failed (HTTP $RC_HTTP, curl exit $RC_CURL_RC)"
		fi
		attempts=$RC_ATTEMPTS http=$RC_HTTP
	fi

	core='{"schema":"responder.linux-volatile-data/1"'
	rc_json_q "$RESPONDER_CASE_ID" && core+=",\"case_id\":$REPLY,\"status\":\"$status\""
	[[ -n $err ]] && rc_json_q "$err" && core+=",\"error\":$REPLY"
	core+=",\"started_at\":\"$started\",\"finished_at\":\"$(rc_now)\""
	rc_host_json && core+=",\"instance\":$REPLY"
	if [[ -n ${sha:-} ]]; then
		rc_json_q "$etag"
		core+=",\"archive\":{\"format\":\"tar+gzip\",\"bytes\":$bytes,\"sha256\":\"$sha\",\"content_md5\":\"${RC_MD5:-}\""
		core+=",\"etag\":$REPLY,\"attempts\":$attempts,\"http_status\":$((10#$http))}"
	fi
	core+=",\"sections\":["
	sep=''
	for x in "${VD_SECTIONS[@]}"; do core+="$sep${x%%,\"stderr\":*}"; [[ $x == *',"stderr":'* ]] && core+='}'; sep=,; done
	core+="]"
	rc_emit_report "$core}" "$core}" "$RESPONDER_RESULT_URL" "$VD_WORK/report.json"
	return "$rc"
}

vd_main "$@"
