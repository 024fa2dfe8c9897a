#!/usr/bin/env bash
# Prepares MongooseIM for docker-compose.yml; run once per `up` by the
# service mongooseim-init, in the MongooseIM image, before PostgreSQL and
# MongooseIM start.
#
# 1. Writes MongooseIM's configuration: deploy/mongooseim/mongooseim.toml
#    with its @NAME@ placeholders replaced by the environment variables of
#    the same name (escaped for a TOML basic string), to the directory the
#    image's entrypoint takes mongooseim.toml from (/member). scripts/mongooseim
#    renders the tests' configuration for 6.1.0 (mongooseim-6.1.0.toml) with it.
# 2. Copies the PostgreSQL schema of this very MongooseIM release
#    (priv/pg.sql in the release) where PostgreSQL's first start loads it
#    (deploy/postgres/10-databases.sh), so schema and server always match.
#
# Only bash builtins, mktemp, chmod, mv and cp: the MongooseIM image has
# bash (its entrypoint is a bash script). The paths can be changed for a
# test (deploy/deploy_test.go runs this script on its own files):
#   MIM_TEMPLATE  the configuration with placeholders (/presenced/mongooseim.toml)
#   MIM_CONFIG    where the filled-in configuration goes (/member/mongooseim.toml)
#   MIM_ROOT      the MongooseIM release (/usr/lib/mongooseim)
#   MIM_SCHEMA    where pg.sql goes (/schema/pg.sql)
set -euo pipefail

template=${MIM_TEMPLATE:-/presenced/mongooseim.toml}
config=${MIM_CONFIG:-/member/mongooseim.toml}
root=${MIM_ROOT:-/usr/lib/mongooseim}
schema=${MIM_SCHEMA:-/schema/pg.sql}

die() {
	echo "mongooseim-init: $*" >&2
	exit 1
}

[ -r "$template" ] || die "cannot read $template"
content=$(<"$template")

# The placeholders: every @NAME@ outside comments, each filled from the
# variable of the same name, but MongooseIM's own @HOST@ (mod_vcard).
names=()
while IFS= read -r line; do
	[[ $line =~ ^[[:space:]]*# ]] && continue
	while [[ $line =~ @([A-Z][A-Z0-9_]*)@ ]]; do
		name=${BASH_REMATCH[1]}
		line=${line/"@$name@"/}
		[ "$name" = HOST ] && continue
		case " ${names[*]} " in
		*" $name "*) ;;
		*) names+=("$name") ;;
		esac
	done
done <<<"$content"
for name in "${names[@]}"; do
	value=${!name:-}
	[ -n "$value" ] || die "$name is empty"
	case $value in
	*[[:cntrl:]]*) die "$name contains a control character" ;;
	esac
	# TOML basic string: escape backslashes, then double quotes. The quoted
	# pattern and replacement are taken literally (no glob, no &).
	value=${value//\\/\\\\}
	value=${value//\"/\\\"}
	content=${content//"@$name@"/"$value"}
done
for name in "${names[@]}"; do
	case $content in
	*"@$name@"*) die "@$name@ is still in the configuration" ;;
	esac
done

mkdir -p "$(dirname "$config")"
tmp=$(mktemp "$config.XXXXXX")
printf '%s\n' "$content" >"$tmp"
# World-readable: MongooseIM runs as a user of its image, not as root.
chmod 0644 "$tmp"
mv -f "$tmp" "$config"
echo "mongooseim-init: wrote $config" >&2

shopt -s nullglob
sql=("$root"/lib/mongooseim-*/priv/pg.sql)
[ "${#sql[@]}" -eq 1 ] || die "expected one $root/lib/mongooseim-*/priv/pg.sql, found ${#sql[@]}"
mkdir -p "$(dirname "$schema")"
cp "${sql[0]}" "$schema"
chmod 0644 "$schema"
echo "mongooseim-init: copied ${sql[0]} to $schema" >&2
