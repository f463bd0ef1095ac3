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
#   ntfs      ntfs-3g -o ro,norecover (ntfs-3g checks a hibernated or
#             unclean volume, and clears its $LogFile or hibernation file,
#             only on a read-write mount; norecover would refuse even that)
#   LVM       only the working volumes visible to LVM (--devices), volume
#             groups activated with metadata_read_only and every LV in
#             read_only_volume_list, read back read-only in device-mapper,
#             then their filesystems as above; a VG whose name or UUID is
#             already active on the host is refused, not renamed
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
am_found=()         # vol-ID:/dev/NAME of every working volume found
am_vgs=()           # UUIDs of the volume groups already activated
am_lvm_devices=''   # every working volume and partition, comma-separated
# The configuration of every lvm command: no change to on-disk metadata (a VG
# in need of repair is read as if repaired, not repaired), and no metadata
# backup or archive written on the host.
am_lvm_ro='global{metadata_read_only=1} backup{backup=0 archive=0}'
# A volume group this document activated is marked here (by UUID), so that a
# second run mounts it again instead of refusing it as already active.
am_lvm_marks=/run/responder-analysis-mount

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
	ntfs) AM_TYPE=ntfs-3g AM_OPTS=ro,norecover ;;
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

# am_lvm VOL PV activates the volume group on a physical volume read-only and
# mounts the filesystems of its logical volumes. LVM sees only the working
# volumes (--devices: not the host's disks, and whatever the host's devices
# file or filters say). Nothing writes the metadata: metadata_read_only
# forbids it, --poll n restarts no interrupted pvmove or conversion, --monitor
# n starts no dmeventd; read_only_volume_list activates every LV read-only in
# device-mapper whatever permission its metadata gives. (vgchange --readonly
# cannot activate; lvchange --permission r writes the permission into the
# metadata.)
am_lvm() {
	local vol=$1 pv=$2 vg='' uuid='' out rc
	if ! rc_have vgchange || ! rc_have dmsetup; then
		am_error "$vol $pv: LVM physical volume, lvm2 not installed: not mounted"
		return
	fi
	if ! out=$(am_pvs "$pv" 2>/dev/null); then
		am_error "$vol $pv: pvs failed: $(am_pvs "$pv" 2>&1 >/dev/null | tail -n 3)"
		return
	fi
	read -r vg uuid <<<"$out"
	if [[ ! $vg =~ ^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$ || ! $uuid =~ ^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$ ]]; then
		am_error "$vol $pv: no volume group found on the physical volume"
		return
	fi
	# A volume group on several working volumes is activated once.
	[[ " ${am_vgs[*]} " == *" $uuid "* ]] && return
	am_vgs+=("$uuid")
	out=$(am_lvm_clash "$vg" "$uuid")
	rc=$?
	if ((rc == 1)); then
		am_error "$vol $pv: volume group $vg not activated: $out"
		return
	elif ((rc == 0)); then
		if ! out=$(vgchange -ay --devices "$am_lvm_devices" --monitor n --poll n --select "vg_uuid=$uuid" \
			--config "$am_lvm_ro activation{read_only_volume_list=[\"$vg\"]}" 2>&1); then
			am_error "$vol $pv: vgchange -ay $vg failed: $out"
			return
		fi
		mkdir -p "$am_lvm_marks" && : >"$am_lvm_marks/$uuid"
	fi
	am_lvm_mount "$vol" "$vg" "$uuid"
}

# am_pvs PV prints the name and UUID of the volume group on a physical volume.
am_pvs() {
	pvs --noheadings -o vg_name,vg_uuid --devices "$am_lvm_devices" --config "$am_lvm_ro" -- "$1"
}

# am_lvm_clash VG UUID returns 2 when this document activated the volume group
# before (it is marked and active), else prints why the volume group must not
# be activated and returns 1 when a device-mapper device of the host has its UUID (a copy of a
# disk the host uses, whose "activation" would hand back the host's own LVs,
# or the VG was activated before this document ran, by the host's LVM
# autoactivation, without the guarantees below) or its name (the vg-lv names
# collide).
# Renaming the suspect's VG (vgimportclone) would write its metadata: the VG
# is left inactive, with the reason.
am_lvm_clash() {
	local vg=$1 uuid=$2 out name dmuuid dmvg ours=false
	if ! out=$(dmsetup info -c --noheadings -o name,uuid --separator ' ' 2>&1); then
		printf 'device-mapper unavailable: %s' "$out"
		return 1
	fi
	while read -r name dmuuid; do
		dmvg=${name//--/$'\x01'}
		dmvg=${dmvg%%-*}
		dmvg=${dmvg//$'\x01'/-}
		if [[ $dmuuid == "LVM-${uuid//-/}"* && -e $am_lvm_marks/$uuid ]]; then
			ours=true
		elif [[ $dmuuid == "LVM-${uuid//-/}"* ]]; then
			printf 'a volume group with UUID %s is already active on this host (%s): a copy of a disk the host uses, or activated before this document ran (LVM autoactivation)' "$uuid" "$name"
			return 1
		elif [[ $dmvg == "$vg" && $dmuuid == LVM-* ]]; then
			printf 'a volume group named %s is already active on this host (%s); renaming the suspect one (vgimportclone) would write its metadata' "$vg" "$name"
			return 1
		fi
	done <<<"$out"
	if [[ $ours == true ]]; then
		return 2
	elif [[ -e /dev/$vg ]]; then
		printf '/dev/%s already exists on this host' "$vg"
		return 1
	fi
}

# am_lvm_mount VOL VG UUID reads back that each logical volume of the group
# is active read-only in device-mapper (dmsetup attr L--r), then mounts it.
am_lvm_mount() {
	local vol=$1 vg=$2 uuid=$3 lv attr
	while IFS= read -r lv; do
		[[ -n $lv ]] || continue
		attr=$(dmsetup info -c --noheadings -o attr -- "${vg//-/--}-${lv//-/--}" 2>/dev/null)
		if [[ ${attr:3:1} != r || ! -b /dev/$vg/$lv ]]; then
			am_error "$vol $vg/$lv: not active read-only in device-mapper (attr ${attr:-none}): not mounted"
			continue
		fi
		blockdev --setro "/dev/$vg/$lv" 2>/dev/null
		am_mount "$vol" "/dev/$vg/$lv" "lvm-$vg-$lv"
	done < <(lvs --noheadings -o lv_name --devices "$am_lvm_devices" --config "$am_lvm_ro" --select "vg_uuid=$uuid" 2>/dev/null | tr -d ' ')
}

# am_protect VOL NAME finds a working volume's device, sets it and every
# partition read-only in the kernel and adds them to the devices LVM may see;
# it records the device in am_found.
am_protect() {
	local vol=$1 name=$2 dev part
	if ! dev=$(am_device "$vol" "$name"); then
		am_error "$vol: no block device for $name (not attached yet?)"
		return
	fi
	while IFS= read -r part; do
		[[ -n $part ]] || continue
		blockdev --setro "$part" || am_error "$vol $part: blockdev --setro failed"
		am_lvm_devices+=${am_lvm_devices:+,}$part
	done < <(lsblk -lnpo NAME -- "$dev")
	am_found+=("$vol:$dev")
}

# am_volume VOL DEV mounts the filesystems of a working volume's device.
am_volume() {
	local vol=$1 dev=$2 part label
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
	local entry entries status=ok host t
	rc_valid_case_id "${RESPONDER_CASE_ID:-}" || am_fail "invalid case ID"
	[[ ${RESPONDER_MOUNT_ROOT:-} =~ ^/mnt/[a-z0-9-]{1,32}$ ]] || am_fail "invalid mount root"
	[[ ${RESPONDER_HASH_DEVICES:-} =~ ^(true|false)$ ]] || am_fail "invalid HashDevices"
	[[ ${RESPONDER_VOLUMES:-} =~ ^vol-[0-9a-f]{8,17}:/dev/[a-z0-9]{3,8}(,vol-[0-9a-f]{8,17}:/dev/[a-z0-9]{3,8})*$ ]] ||
		am_fail "invalid volume list"
	[[ $(id -u) == 0 ]] || am_fail "not root: cannot set devices read-only or mount"
	for t in blockdev blkid lsblk findmnt mount; do
		rc_have "$t" || am_fail "$t not found"
	done
	export LVM_SUPPRESS_FD_WARNINGS=1
	IFS=, read -ra entries <<<"$RESPONDER_VOLUMES"
	# Every device read-only first: a volume group may span several.
	for entry in "${entries[@]}"; do
		am_protect "${entry%%:*}" "${entry#*:}"
	done
	for entry in "${am_found[@]}"; do
		am_volume "${entry%%:*}" "${entry#*:}"
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
