#!/usr/bin/env bash
# analysis-mount.sh: mount the working volumes of an investigation read-only
# on the analysis instance, proving that nothing wrote to them. Run by the
# Responder-AnalysisMount document (forensics account), after
# responder-common.sh.
#
# Input (environment):
#   RESPONDER_CASE_ID        the case (only recorded in the report)
#   RESPONDER_VOLUMES        vol-ID:/dev/NAME[,...]: each working volume and
#                            the device name it was attached as
#   RESPONDER_MOUNT_ROOT     /mnt/NAME: mounts go to ROOT/<vol-ID>/<part>
#   RESPONDER_HASH_DEVICES   true: also hash every device before and after
#                            (reads it whole; slow on a lazily restored volume)
#
# For each volume the device is found by its EBS serial (NVMe: the by-id link
# of the volume ID) or by its attachment name (Xen: /dev/sdf or /dev/xvdf).
# Before anything else every device and partition is set read-only in the
# kernel (blockdev --setro): a write then fails instead of reaching the
# disk. Each filesystem is mounted with the options that skip journal replay:
#   ext2/3/4  ro,noload
#   xfs       ro,norecovery,nouuid (a clone of the host's root has its UUID)
#   ntfs      ntfs-3g -o ro (ntfs-3g never replays the $LogFile)
#   LVM       volume groups activated with metadata_read_only and every LV
#             in read_only_volume_list, then their filesystems as above
# The device's write counters (/sys/class/block/DEV/stat: write I/Os and
# sectors written) are read before and after the mount; a mount counts as
# unchanged only when they are equal, the mount reads back ro and (when
# hashed) the SHA-256 is the same.
#
# Output: one JSON line, schema responder.analysis-mount/1. Exit status 0
# only when every filesystem found was mounted read-only and unchanged.
# shellcheck shell=bash

am_schema=responder.analysis-mount/1
am_mounts=()
am_errors=()

am_fail() {
	rc_json_q "$1"
	printf '{"schema":"%s","status":"failed","error":%s}\n' "$am_schema" "$REPLY"
	exit 1
}

am_error() {
	rc_json_q "$1"
	am_errors+=("$REPLY")
}

# am_writes DEV prints the device's write I/Os and sectors written, "ios:sectors".
am_writes() {
	local name stat w_ios w_sectors
	name=$(basename "$(readlink -f "$1")")
	stat=/sys/class/block/$name/stat
	[[ -r $stat ]] || { printf 'unknown'; return; }
	read -r _ _ _ _ w_ios _ w_sectors _ <"$stat"
	printf '%s:%s' "$w_ios" "$w_sectors"
}

# am_device VOL NAME prints the block device of a working volume.
am_device() {
	local vol=$1 name=$2 link
	link=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${vol/-/}
	if [[ -e $link ]]; then
		readlink -f "$link"
	elif [[ -b $name ]]; then
		printf '%s' "$name"
	elif [[ $name == /dev/sd* && -b /dev/xvd${name#/dev/sd} ]]; then
		printf '/dev/xvd%s' "${name#/dev/sd}"
	else
		return 1
	fi
}

am_hash() {
	if [[ $RESPONDER_HASH_DEVICES == true ]]; then
		rc_sha256 <"$1"
	fi
}

# am_options FSTYPE sets AM_TYPE and AM_OPTS for a read-only mount without
# journal replay; returns 1 for a filesystem it does not mount.
am_options() {
	case $1 in
	ext2 | ext3 | ext4) AM_TYPE=$1 AM_OPTS=ro,noload ;;
	xfs) AM_TYPE=xfs AM_OPTS=ro,norecovery,nouuid ;;
	ntfs) AM_TYPE=ntfs-3g AM_OPTS=ro ;;
	*) return 1 ;;
	esac
}

# am_mount VOL DEV LABEL mounts one filesystem (or, for an LVM physical
# volume, the logical volumes on it) and records it.
am_mount() {
	local vol=$1 dev=$2 label=$3 fstype mp out w_before w_after h_before='' h_after='' opts ro=false unchanged=false err=''
	fstype=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null)
	[[ -n $fstype ]] || return 0
	if [[ $fstype == LVM2_member ]]; then
		am_lvm "$vol" "$dev"
		return
	fi
	mp=$RESPONDER_MOUNT_ROOT/$vol/$label
	if ! am_options "$fstype"; then
		err="unsupported filesystem $fstype: not mounted"
	elif [[ $AM_TYPE == ntfs-3g ]] && ! rc_have ntfs-3g; then
		err="ntfs-3g not installed: not mounted"
	fi
	w_before=$(am_writes "$dev")
	h_before=$(am_hash "$dev")
	if [[ -z $err ]]; then
		mkdir -p -- "$mp"
		if findmnt -rn --mountpoint "$mp" >/dev/null 2>&1; then
			: # mounted by an earlier run: read back below
		elif ! out=$(mount -t "$AM_TYPE" -o "$AM_OPTS" -- "$dev" "$mp" 2>&1); then
			err="mount failed: $out"
		fi
	fi
	opts=$(findmnt -rn -o OPTIONS --mountpoint "$mp" 2>/dev/null)
	[[ ,$opts, == *,ro,* ]] && ro=true
	w_after=$(am_writes "$dev")
	h_after=$(am_hash "$dev")
	if [[ -z $err && $ro == true && $w_before == "$w_after" && $w_before != unknown && $h_before == "$h_after" ]]; then
		unchanged=true
	elif [[ -z $err ]]; then
		err="not proven unchanged: read-only $ro, writes $w_before -> $w_after"
	fi
	[[ -n $err ]] && am_error "$vol $dev: $err"
	am_record "$vol" "$dev" "$fstype" "$mp" "$opts" "$ro" "$w_before" "$w_after" "$h_before" "$h_after" "$unchanged" "$err"
}

am_record() {
	local j='{' k v
	local keys=(volume_id device fstype mount_point options read_only writes_before writes_after sha256_before sha256_after unchanged error)
	local i=0
	for v in "$@"; do
		k=${keys[i]}
		i=$((i + 1))
		if [[ $k == read_only || $k == unchanged ]]; then
			j+="\"$k\":$v,"
		else
			rc_json_q "$v"
			j+="\"$k\":$REPLY,"
		fi
	done
	am_mounts+=("${j%,}}")
}

# am_lvm VOL PV activates the volume groups on a physical volume with every
# logical volume read-only and no metadata write, then mounts their
# filesystems.
am_lvm() {
	local vol=$1 pv=$2 vg lv cfg out
	if ! rc_have vgchange; then
		am_error "$vol $pv: LVM physical volume, lvm2 not installed: not mounted"
		return
	fi
	vg=$(pvs --noheadings -o vg_name --config 'global{metadata_read_only=1}' -- "$pv" 2>/dev/null | tr -d ' ')
	[[ $vg =~ ^[A-Za-z0-9+_.-]+$ ]] || { am_error "$vol $pv: no volume group found on the physical volume"; return; }
	cfg="global{metadata_read_only=1} activation{read_only_volume_list=[\"$vg\"]}"
	if ! out=$(vgchange -ay --config "$cfg" -- "$vg" 2>&1); then
		am_error "$vol $pv: vgchange -ay $vg failed: $out"
		return
	fi
	while IFS= read -r lv; do
		[[ -n $lv && -b /dev/$vg/$lv ]] || continue
		blockdev --setro "/dev/$vg/$lv" 2>/dev/null
		am_mount "$vol" "/dev/$vg/$lv" "lvm-$vg-$lv"
	done < <(lvs --noheadings -o lv_name --config 'global{metadata_read_only=1}' -- "$vg" 2>/dev/null | tr -d ' ')
}

am_volume() {
	local vol=$1 name=$2 dev part label
	if ! dev=$(am_device "$vol" "$name"); then
		am_error "$vol: no block device for $name (not attached yet?)"
		return
	fi
	# Read-only in the kernel first, the disk and every partition.
	while IFS= read -r part; do
		[[ -n $part ]] || continue
		blockdev --setro "$part" || am_error "$vol $part: blockdev --setro failed"
	done < <(lsblk -lnpo NAME -- "$dev")
	while IFS= read -r part; do
		[[ -n $part ]] || continue
		label=disk
		[[ $part != "$dev" ]] && label=p${part##*[!0-9]}
		am_mount "$vol" "$part" "$label"
	done < <(lsblk -lnpo NAME -- "$dev")
}

am_main() {
	set -uo pipefail
	export LC_ALL=C
	local entry entries vol name status=ok host t
	rc_valid_case_id "${RESPONDER_CASE_ID:-}" || am_fail "invalid case ID"
	[[ ${RESPONDER_MOUNT_ROOT:-} =~ ^/mnt/[a-z0-9-]{1,32}$ ]] || am_fail "invalid mount root"
	[[ ${RESPONDER_HASH_DEVICES:-} =~ ^(true|false)$ ]] || am_fail "invalid HashDevices"
	[[ ${RESPONDER_VOLUMES:-} =~ ^vol-[0-9a-f]{8,17}:/dev/[a-z0-9]{3,8}(,vol-[0-9a-f]{8,17}:/dev/[a-z0-9]{3,8})*$ ]] ||
		am_fail "invalid volume list"
	[[ $(id -u) == 0 ]] || am_fail "not root: cannot set devices read-only or mount"
	for t in blockdev blkid lsblk findmnt mount; do
		rc_have "$t" || am_fail "$t not found"
	done
	IFS=, read -ra entries <<<"$RESPONDER_VOLUMES"
	for entry in "${entries[@]}"; do
		vol=${entry%%:*}
		name=${entry#*:}
		am_volume "$vol" "$name"
	done
	((${#am_errors[@]} == 0)) || status=partial
	((${#am_mounts[@]} == 0)) && status=failed && am_error "no filesystem mounted"
	rc_host_json
	host=$REPLY
	rc_json_q "$RESPONDER_CASE_ID"
	printf '{"schema":"%s","status":"%s","case_id":%s,"host":%s,"mounts":[%s],"errors":[%s]}\n' \
		"$am_schema" "$status" "$REPLY" "$host" "$(IFS=,; printf '%s' "${am_mounts[*]}")" "$(IFS=,; printf '%s' "${am_errors[*]}")"
	[[ $status == ok ]]
}

am_main "$@"
