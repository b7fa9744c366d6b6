# Copyright (c) pgbr contributors
#
# Restores as a user meets them: backups taken with SELECT pgbr_backup()
# and restored with "pgbr restore" into new data directories that are then
# started and compared with the primary:
#
#   - the latest full into an empty directory (default recovery, tablespace
#     remapped with --tablespace-map, process-max 3): the data is the
#     primary's at the backup; the log has pgBackRest's lines;
#   - refusals: a running cluster, a non-empty directory without --delta;
#   - point-in-time recovery to a time and to a named restore point: exactly
#     the rows committed before the target;
#   - a standby (--type=standby, primary_conninfo from --recovery-option)
#     that streams, then, with streaming cut, replays from the archive
#     through archive-get;
#   - --delta repairing a data directory with deleted, altered and extra
#     files: only the changed files are fetched;
#   - restores of a diff and of an incr chain;
#   - a damaged file in the repository: restore fails naming it and the
#     backup, and pgbr verify reports it;
#   - pgbr info (text and JSON) and pgbr backup.

use strict;
use warnings;

use File::Path qw(make_path);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use PgbrTest;

my $RECOVERY_WAIT = 120;    # a restored cluster reaches its target

###########################################################################
# Repository server, primary, client configuration
###########################################################################

my $certdir  = PgbrTest::tmpdir('certs');
my $ca       = PgbrTest::make_ca($certdir, 'ca');
my $srv_cert = PgbrTest::make_cert($certdir, $ca, 'backup-srv', server => 1);
my $pg1      = PgbrTest::make_cert($certdir, $ca, 'pg1-srv');

my $server = PgbrTest::start_server(
	cert      => $srv_cert,
	ca        => $ca,
	auth      => ['pg1-srv=demo'],
	log_level => 'detail',
	global    => { 'repo1-retention-full' => 10 });
my $repo = $server->global->{'repo1-path'};

my $confdir = PgbrTest::tmpdir('conf');
my $tsdir   = PgbrTest::tmpdir('tablespaces');
my $conf    = "$confdir/pg1.conf";

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
PgbrTest::client_conf(
	$conf,
	host     => 'localhost',
	port     => $server->port,
	cert     => $pg1,
	ca       => $ca,
	sections => {
		demo => {
			PgbrTest::pg1_options($primary),
		}
	});
$primary->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'pgbr'
archive_mode = on
archive_library = 'pgbr'
pgbr.config = '$conf'
pgbr.stanza = 'demo'
wal_keep_size = '1GB'
));
$primary->start;

sub sql { my ($node, $q) = @_; return $node->safe_psql('postgres', $q); }

sql($primary, 'CREATE EXTENSION pgbr');
sql($primary, 'SELECT pgbr_stanza_create()');

# a tablespace, so that links are restored (and remapped)
my $ts_primary = "$tsdir/primary";
make_path($ts_primary);
sql($primary, "CREATE TABLESPACE ts LOCATION '$ts_primary'");
my $ts_oid = sql($primary, "SELECT oid FROM pg_tablespace WHERE spcname = 'ts'");

sql($primary, q{
CREATE TABLE big (id int PRIMARY KEY, payload text);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 200000) g;
CREATE TABLE small (id int, note text);
INSERT INTO small SELECT g, 'full' FROM generate_series(1, 100) g;
CREATE TABLE spc (id int, v text) TABLESPACE ts;
INSERT INTO spc SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
CREATE TABLE events (id serial, tag text, at timestamptz DEFAULT clock_timestamp());
CHECKPOINT;
});

# What "the same data" means: row count and content hash of every table.
my $SNAPSHOT = q{
SELECT string_agg(t || ':' || n || ':' || h, ' ' ORDER BY t) FROM (
  SELECT 'big' t, count(*) n, coalesce(sum(hashtext(b::text)), 0) h FROM big b
  UNION ALL SELECT 'small', count(*), coalesce(sum(hashtext(s::text)), 0) FROM small s
  UNION ALL SELECT 'spc', count(*), coalesce(sum(hashtext(p::text)), 0) FROM spc p
  UNION ALL SELECT 'events', count(*), coalesce(sum(hashtext(e.id || e.tag)), 0) FROM events e
) x};

sub snapshot { return sql($_[0], $SNAPSHOT); }

sub pgbr
{
	return PgbrTest::run_pgbr({ timeout => 300 }, "--config=$conf", '--stanza=demo', @_);
}

sub backup
{
	my ($type) = @_;
	my $label = sql($primary, "SELECT pgbr_backup('$type')");
	like($label, qr/^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/, "$type backup $label taken");
	return $label;
}

# Makes sure every WAL written so far is in the repository.
sub archive_now { sql($primary, 'SELECT pgbr_check()'); }

# A new node whose data directory is restored with @opts (tablespace
# remapped under $tsdir/<name>).  Returns ($node, $rc, $stdout, $stderr).
sub restore_node
{
	my ($name, @opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	my ($rc, $out, $err) = pgbr('--pg1-path=' . $node->data_dir,
		"--tablespace-map=$ts_oid=$tsdir/$name", @opts, 'restore');
	return ($node, $rc, $out, $err);
}

# Settings a restored cluster needs on this host: its own port and socket,
# and no archiving into the primary's stanza.
sub prepare_restored
{
	my ($node) = @_;
	$node->append_conf(
		'postgresql.conf', sprintf(
			"port = %d\nunix_socket_directories = '%s'\narchive_mode = off\n",
			$node->port, $node->host));
}

sub start_promoted
{
	my ($node) = @_;
	prepare_restored($node);
	$node->start;
	ok($node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
		$node->name . ': recovery finished');
}

###########################################################################
# Full backup, restore into an empty directory
###########################################################################

my $snap_full = snapshot($primary);
my $full      = backup('full');
my $relpath_big   = sql($primary, "SELECT pg_relation_filepath('big')");
my $relpath_small = sql($primary, "SELECT pg_relation_filepath('small')");
archive_now();

{
	my ($node, $rc, $out, $err) = restore_node('full', '--process-max=3');
	is($rc, 0, 'restore of the full backup succeeds') or diag($err);
	my $dir = $node->data_dir;
	like($out, qr/P00   INFO: restore command begin \S+: .*--stanza=demo/, 'log: command begin');
	like($out, qr/repo1: restore backup set \Q$full\E, recovery will start at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/,
		'log: backup set and recovery start');
	like($out, qr/write updated \Q$dir\E\/postgresql\.auto\.conf/, 'log: auto.conf written');
	like($out, qr/restore global\/pg_control \(performed last to ensure aborted restores cannot be started\)/,
		'log: pg_control last');
	like($out, qr/restore size = [\d.]+[KMG]?B, file total = \d+/, 'log: size and file total');
	like($out, qr/restore command end: completed successfully/, 'log: command end');
	ok(-f "$dir/recovery.signal", 'recovery.signal written for the default type');
	my $auto = slurp_file("$dir/postgresql.auto.conf");
	like($auto,
		qr/^# Recovery settings generated by pgbr restore\nrestore_command = '\/\S+\/pgbr --config=\Q$conf\E --stanza=demo archive-get %f "%p"'\n# End of recovery settings generated by pgbr restore\n/m,
		'auto.conf: restore_command with the absolute binary path and --config');
	is(readlink("$dir/pg_tblspc/$ts_oid"), "$tsdir/full", 'tablespace link remapped');
	ok(!-e "$dir/tablespace_map", 'no tablespace_map that would undo the remapping');

	start_promoted($node);
	is(snapshot($node), $snap_full, 'restored data equals the primary at the full backup');
	is(sql($node, "SELECT pg_tablespace_location($ts_oid)"), "$tsdir/full",
		'tablespace location is the mapped one');
	$node->stop;

	# refusals
	($rc, $out, $err) = pgbr('--pg1-path=' . $primary->data_dir, '--delta', 'restore');
	isnt($rc, 0, 'restore over a running cluster fails');
	like($err, qr/ERROR: \[\d+\]: unable to restore while PostgreSQL is running/,
		'... saying PostgreSQL is running');
	($rc, $out, $err) = pgbr("--pg1-path=$dir", "--tablespace-map=$ts_oid=$tsdir/full", 'restore');
	isnt($rc, 0, 'restore into a non-empty directory without --delta fails');
	like($err, qr/because it contains files/, '... saying it contains files');
	like($err, qr/HINT: .*--delta/, '... and hinting at --delta');
}

###########################################################################
# Point-in-time recovery: to a time, to a named restore point
###########################################################################

sql($primary, "INSERT INTO events (tag) SELECT 'before_time' FROM generate_series(1, 10)");
my $t_target = sql($primary, 'SELECT clock_timestamp()');
usleep(100_000);
sql($primary, "INSERT INTO events (tag) SELECT 'before_name' FROM generate_series(1, 20)");
sql($primary, "SELECT pg_create_restore_point('pgbr_rp')");
sql($primary, "INSERT INTO events (tag) SELECT 'after_name' FROM generate_series(1, 30)");
archive_now();

my $EVENTS = q{SELECT string_agg(tag || '=' || n, ',' ORDER BY tag) FROM
  (SELECT tag, count(*) n FROM events GROUP BY tag) x};
{
	my ($node, $rc, $out, $err) = restore_node('pitr_time', '--type=time',
		"--target=$t_target", '--target-action=promote');
	is($rc, 0, 'restore to a time succeeds') or diag($err);
	like(slurp_file($node->data_dir . '/postgresql.auto.conf'),
		qr/^recovery_target_time = '\Q$t_target\E'$/m, 'auto.conf has recovery_target_time');
	start_promoted($node);
	is(sql($node, $EVENTS), 'before_time=10', 'PITR to a time: exactly the rows committed before it');
	$node->stop;

	($node, $rc, $out, $err) = restore_node('pitr_name', '--type=name', '--target=pgbr_rp',
		'--target-action=promote', '--process-max=2');
	is($rc, 0, 'restore to a restore point succeeds') or diag($err);
	start_promoted($node);
	is(sql($node, $EVENTS), 'before_name=20,before_time=10',
		'PITR to a restore point: exactly the rows committed before it');
	$node->stop;
}

###########################################################################
# Standby: streams, then keeps up from the archive
###########################################################################

{
	my $conninfo = sprintf('host=%s port=%d application_name=standby',
		$primary->host, $primary->port);
	my ($node, $rc, $out, $err) = restore_node('standby', '--type=standby',
		"--recovery-option=primary_conninfo=$conninfo");
	is($rc, 0, 'standby restore succeeds') or diag($err);
	my $dir = $node->data_dir;
	ok(-f "$dir/standby.signal",    'standby.signal written');
	ok(!-e "$dir/recovery.signal", 'no recovery.signal');
	like(slurp_file("$dir/postgresql.auto.conf"), qr/^primary_conninfo = '\Q$conninfo\E'$/m,
		'primary_conninfo from --recovery-option');
	prepare_restored($node);
	$node->append_conf('postgresql.conf', "hot_standby = on\n");
	$node->start;

	sql($primary, "INSERT INTO events (tag) SELECT 'streamed' FROM generate_series(1, 5)");
	$primary->wait_for_catchup('standby');
	is(sql($node, "SELECT count(*) FROM events WHERE tag = 'streamed'"), '5',
		'standby received rows by streaming');
	is(sql($node, 'SELECT status FROM pg_stat_wal_receiver'), 'streaming', 'standby streams');

	# cut streaming: the walreceiver now points at a closed port
	sql($node, sprintf("ALTER SYSTEM SET primary_conninfo = 'host=%s port=1'", $primary->host));
	$node->reload;
	ok($primary->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_replication WHERE application_name = 'standby'"),
		'streaming stopped');
	my $log_offset = -s $node->logfile;
	sql($primary, "INSERT INTO events (tag) SELECT 'archived' FROM generate_series(1, 7)");
	archive_now();
	ok($node->poll_query_until('postgres', "SELECT count(*) = 7 FROM events WHERE tag = 'archived'"),
		'standby replays from the archive once streaming is cut');
	is(sql($node, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"), '0',
		'... and not by streaming');
	ok($node->log_contains(qr/found [0-9A-F]{24} in the archive/, $log_offset),
		'... through archive-get');
	$node->stop;
}

###########################################################################
# Delta restore
###########################################################################

{
	my ($node, $rc, $out, $err) = restore_node('delta', "--set=$full", '--type=immediate',
		'--target-action=promote');
	is($rc, 0, 'restore for the delta test succeeds') or diag($err);
	my $dir = $node->data_dir;
	my @opts = ("--pg1-path=$dir", "--tablespace-map=$ts_oid=$tsdir/delta", "--set=$full",
		'--type=immediate', '--target-action=promote');

	# damage: one file removed, one altered (same size), extra files and dirs
	my $changed = (-s "$dir/$relpath_small") + (-s "$dir/$relpath_big");
	unlink("$dir/$relpath_small") or die "unlink: $!";
	open(my $fh, '+<', "$dir/$relpath_big") or die "open: $!";
	binmode $fh;
	seek($fh, 8192 * 3 + 100, 0);
	print $fh 'garbage that was not in the backup';
	close $fh;
	make_path("$dir/junk_dir/sub");
	foreach my $junk ("$dir/junk_dir/sub/file", "$dir/base/junk_file")
	{
		open(my $jh, '>', $junk) or die "create $junk: $!";
		print $jh "not in the backup\n";
		close $jh;
	}

	($rc, $out, $err) = pgbr(@opts, 'restore');
	isnt($rc, 0, 'restore into the damaged directory without --delta fails');

	($rc, $out, $err) = pgbr(@opts, '--delta', '--process-max=2', 'restore');
	is($rc, 0, 'delta restore succeeds') or diag($err);
	my ($files, $bytes) = $out =~ /restore size = \S+, file total = \d+, fetched = (\d+) files \/ (\d+) bytes/;
	ok(defined $files, 'delta restore reports what it fetched') or diag($out);
	$files //= -1;
	$bytes //= -1;
	# the two files, pg_control (always) and postgresql.auto.conf (rewritten last time)
	cmp_ok($files, '>=', 2, 'delta fetched the changed files');
	cmp_ok($files, '<=', 4, 'delta fetched only the changed files (+ pg_control, auto.conf)');
	cmp_ok($bytes, '>=', $changed, "delta fetched at least the $changed changed bytes");
	cmp_ok($bytes, '<=', $changed + 8192 + 4096, '... and not much more');
	ok(!-e "$dir/junk_dir" && !-e "$dir/base/junk_file", 'delta removed what the backup lacks');

	# --delta --force (pgBackRest's): size and mtime decide, nothing is read.
	# A file altered in place with its size and mtime kept is not noticed
	# (the documented trade-off); a file whose size changed is fetched.
	my $big_mtime = (stat("$dir/$relpath_big"))[9];
	open($fh, '+<', "$dir/$relpath_big") or die "open: $!";
	binmode $fh;
	seek($fh, 8192 * 5 + 7, 0);
	print $fh 'same size, same mtime';
	close $fh;
	utime($big_mtime, $big_mtime, "$dir/$relpath_big") or die "utime: $!";
	truncate("$dir/$relpath_small", 8192) or die "truncate: $!";
	($rc, $out, $err) = pgbr(@opts, '--delta', '--force', 'restore');
	is($rc, 0, 'delta --force restore succeeds') or diag($err);
	($files, $bytes) = $out =~ /fetched = (\d+) files \/ (\d+) bytes/;
	$bytes //= -1;
	cmp_ok($bytes, '<', -s "$dir/$relpath_big", 'delta --force did not fetch the file whose size and mtime match');
	is(-s "$dir/$relpath_small", $changed - (-s "$dir/$relpath_big"), 'delta --force fetched the file whose size changed');
	($rc, $out, $err) = pgbr(@opts, '--delta', 'restore');
	is($rc, 0, 'a plain delta restore after it succeeds') or diag($err);
	($files, $bytes) = $out =~ /fetched = (\d+) files \/ (\d+) bytes/;
	cmp_ok($bytes // -1, '>=', -s "$dir/$relpath_big", 'and the checksum finds the file altered in place');

	start_promoted($node);
	is(snapshot($node), $snap_full, 'delta-restored data equals the full backup');
	$node->stop;
}

###########################################################################
# diff and incr chain
###########################################################################

sql($primary, "UPDATE small SET note = 'diff' WHERE id <= 10");
sql($primary, "INSERT INTO big SELECT g, 'diff' FROM generate_series(200001, 201000) g");
my $snap_diff = snapshot($primary);
my $diff      = backup('diff');
like($diff, qr/^\Q$full\E_\d{8}-\d{6}D$/, 'diff builds on the full');

sql($primary, "DELETE FROM small WHERE id > 90");
my $incr1 = backup('incr');
sql($primary, "INSERT INTO spc SELECT g, 'incr' FROM generate_series(5001, 6000) g");
sql($primary, "INSERT INTO events (tag) VALUES ('incr2')");
my $snap_incr2 = snapshot($primary);
my $incr2      = backup('incr');
like($incr2, qr/^\Q$full\E_\d{8}-\d{6}I$/, 'incr label');
archive_now();

{
	my ($node, $rc, $out, $err) = restore_node('diff', "--set=$diff", '--type=immediate',
		'--target-action=promote', '--process-max=2');
	is($rc, 0, 'restore of the diff succeeds') or diag($err);
	start_promoted($node);
	is(snapshot($node), $snap_diff, 'diff restore: data as at the diff backup');
	$node->stop;

	($node, $rc, $out, $err) = restore_node('incr', '--type=immediate', '--target-action=promote');
	is($rc, 0, 'restore of the latest backup (incr chain) succeeds') or diag($err);
	like($out, qr/restore backup set \Q$incr2\E,/, 'latest backup is the second incr');
	start_promoted($node);
	is(snapshot($node), $snap_incr2, 'incr chain restore: data as at the last incr');
	$node->stop;
}

###########################################################################
# info, backup
###########################################################################

{
	my ($rc, $out, $err) = pgbr('info');
	is($rc, 0, 'info succeeds');
	like($out, qr/^stanza: demo\n    status: ok\n    cipher: none\n\n    db \(current\)\n        wal archive min\/max \(\d+\): [0-9A-F]{24}\/[0-9A-F]{24}\n/,
		'info: stanza header like pgBackRest');
	like($out, qr/\n        full backup: \Q$full\E\n            timestamp start\/stop: \S+ \S+ \/ \S+ \S+\n            wal start\/stop: [0-9A-F]{24} \/ [0-9A-F]{24}\n            database size: [\d.]+[KMG]?B, database backup size: [\d.]+[KMG]?B\n            repo1: backup size: [\d.]+[KMG]?B\n/,
		'info: full backup block');
	like($out, qr/\n        diff backup: \Q$diff\E\n(?:            .*\n)*?            backup reference list: \Q$full\E\n/,
		'info: diff backup with its reference');
	like($out, qr/\n        incr backup: \Q$incr2\E\n/, 'info: incr backup');

	($rc, $out, $err) = pgbr('--output=json', 'info');
	is($rc, 0, 'info --output=json succeeds');
	my $json = eval { decode_json($out) };
	ok($json, 'info JSON parses') or diag($@);
	is($json->[0]{name}, 'demo', 'JSON: stanza name');
	is($json->[0]{status}{message}, 'ok', 'JSON: status');
	is_deeply([ map { $_->{label} } @{ $json->[0]{backup} } ], [ $full, $diff, $incr1, $incr2 ],
		'JSON: backups oldest first');
	is($json->[0]{backup}[1]{prior}, $full, 'JSON: prior of the diff');

	($rc, $out, $err) = pgbr('--type=incr', 'backup');
	is($rc, 0, 'pgbr backup succeeds') or diag($err);
	like($out, qr/new backup label = \Q$full\E_\d{8}-\d{6}I/, 'pgbr backup prints the label');
}

###########################################################################
# A damaged file in the repository
###########################################################################

{
	my ($stored) = grep { -f $_ } map { "$repo/demo/backup/$full/pg_data/$relpath_big.$_" } qw(zst raw);
	ok(defined $stored, "the full backup stores $relpath_big as its own file")
	  or diag(join("\n", glob("$repo/demo/backup/$full/pg_data/base/*/*")));
	$stored //= '/nonexistent';
	my $size = -s $stored;
	open(my $fh, '+<', $stored) or die "open $stored: $!";
	binmode $fh;
	my $pos = int($size / 2);
	seek($fh, $pos, 0);
	read($fh, my $byte, 1);
	seek($fh, $pos, 0);
	print $fh chr(ord($byte) ^ 0xff);
	close $fh;

	my ($node, $rc, $out, $err) = restore_node('damaged', "--set=$full", '--process-max=2');
	isnt($rc, 0, 'restore of a damaged backup fails');
	like($err, qr/ERROR: \[\d+\]: file "\Q$relpath_big\E" of backup \Q$full\E is damaged/,
		'... naming the file and the backup');
	ok(!-e $node->data_dir . '/global/pg_control', '... and leaves no pg_control');

	($rc, $out, $err) = pgbr('verify');
	isnt($rc, 0, 'verify fails');
	like($out, qr/\Q$relpath_big\E/, 'verify names the damaged file');
	like($err, qr/ERROR: \[\d+\]: verify found 1 problem\(s\) in the repository/, 'verify counts it');

	open($fh, '+<', $stored) or die "open $stored: $!";
	binmode $fh;
	seek($fh, $pos, 0);
	print $fh $byte;
	close $fh;
	($rc, $out, $err) = pgbr('verify');
	is($rc, 0, 'verify succeeds once the file is repaired') or diag($out . $err);
}

$primary->stop;
is($server->stop, 0, 'pgbr-server stopped cleanly');

done_testing();
