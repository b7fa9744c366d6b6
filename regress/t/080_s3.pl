# Copyright (c) pgbr contributors
#
# The repository in an S3 bucket of a real Ceph RADOS Gateway
# (regress/ceph-rgw.sh, started by regress/run-tests.sh), served by two
# pgbr-server instances at once, as the README describes:
#
#   1. stanza-create and a burst of WAL through server A; every segment comes
#      back byte-identical through server B;
#   2. the gateway is killed in the middle of a burst and started again:
#      the archiver fails meanwhile, then catches up, nothing is missing;
#   3. the same segment pushed again through server B: identical content is
#      accepted, different content refused ("different checksum");
#   4. backups from SQL with bundles through A (full, incr), listed through
#      B; restore through B gives the same data; a backup running through
#      A keeps "expire" through B out (one lock over both servers);
#   5. retention (repo1-retention-full=2) removes the oldest full and its WAL;
#   6. verify is clean, then a damaged object makes verify report it and a
#      restore fail naming the file;
#   7. a wrong secret: a clear error naming the bucket and the S3 code.
#
# Without a gateway (PGBR_S3_ENDPOINT unset) the test fails: it never
# passes without having talked to a real object store.

use strict;
use warnings;

use Digest::SHA;
use File::Path qw(make_path);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use PgbrTest;

my $ARCHIVE_WAIT = 120;
my $LOG_WAIT     = 20;

for my $var (qw(PGBR_S3_ENDPOINT PGBR_S3_TLS_ENDPOINT PGBR_S3_CA_FILE PGBR_S3_KEY PGBR_S3_SECRET))
{
	if (!defined $ENV{$var} || $ENV{$var} eq '')
	{
		fail("S3 gateway available ($var is not set: run the tests with "
			  . 'regress/run-tests.sh, which starts a Ceph RADOS Gateway)');
		done_testing();
		exit 0;
	}
}
my $endpoint = $ENV{PGBR_S3_ENDPOINT};    # host:port, plain HTTP on loopback
my $region   = $ENV{PGBR_S3_REGION} || 'us-east-1';
my $bucket   = 'pgbr-t080-' . $$;
my $prefix   = 'pgbr';                      # repo1-path inside the bucket

###########################################################################
# S3 by hand (curl with SigV4), to set up and to damage things
###########################################################################

# Runs curl against the gateway; returns (http status, body).
sub s3
{
	my ($method, $path, %o) = @_;
	my @cmd = (
		'curl', '-sS', '-o', '-', '-w', '\n%{http_code}',
		'-X', $method,
		'--aws-sigv4', "aws:amz:$region:s3",
		'--user', "$ENV{PGBR_S3_KEY}:$ENV{PGBR_S3_SECRET}",
		'-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD');
	push @cmd, '--data-binary', '@' . $o{file} if $o{file};
	push @cmd, "http://$endpoint/$path";
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	my ($body, $code) = $out =~ /\A(.*)\n(\d+)\z/s ? ($1, $2) : ($out, 0);
	return ($code, $body . $err);
}

sub s3_keys
{
	my ($p) = @_;
	(my $enc = $p) =~ s{/}{%2F}g;
	my ($code, $body) = s3('GET', "$bucket?list-type=2&prefix=$enc");
	die "listing $p: $code $body" unless $code == 200;
	return ($body =~ m{<Key>([^<]+)</Key>}g);
}

my ($code, $body) = s3('PUT', $bucket);
is($code, 200, "bucket $bucket created on the gateway at $endpoint") or diag $body;

###########################################################################
# Two repository servers over the bucket, a primary archiving through A
###########################################################################

my $certdir = PgbrTest::tmpdir('certs');
my $ca      = PgbrTest::make_ca($certdir, 'ca');
my $srv     = PgbrTest::make_cert($certdir, $ca, 'localhost', server => 1);
my $pg1     = PgbrTest::make_cert($certdir, $ca, 'pg1-srv');

my %s3 = (
	'repo1-type'           => 's3',
	'repo1-path'           => "/$prefix",
	'repo1-s3-endpoint'    => "http://$endpoint",
	'repo1-s3-bucket'      => $bucket,
	'repo1-s3-region'      => $region,
	'repo1-s3-uri-style'   => 'path',
	'repo1-bundle'         => 'y',
	'repo1-retention-full' => 2,
);

sub start_s3_server
{
	my ($name, %over) = @_;
	my $dir = PgbrTest::tmpdir("server_$name");
	return PgbrTest::start_server(
		name      => $name,
		dir       => $dir,
		repo_path => "$dir/unused",
		cert      => $srv,
		ca        => $ca,
		auth      => ['pg1-srv=demo'],
		log_level => 'detail',
		global    => { %s3, %over });
}

# A: plain HTTP, path style, the key and secret in its file.  B: HTTPS
# checked against the gateway's CA, virtual-hosted style
# (<bucket>.s3.localhost), the key and secret from the environment.
my $server_a = start_s3_server('a',
	'repo1-s3-key'        => $ENV{PGBR_S3_KEY},
	'repo1-s3-key-secret' => $ENV{PGBR_S3_SECRET});
my %tls = (
	'repo1-s3-endpoint'  => 'https://s3.localhost:' . (split /:/, $ENV{PGBR_S3_TLS_ENDPOINT} // ':0')[1],
	'repo1-s3-uri-style' => 'host');
my $server_b;
{
	local $ENV{PGBR_REPO1_S3_KEY}        = $ENV{PGBR_S3_KEY};
	local $ENV{PGBR_REPO1_S3_KEY_SECRET} = $ENV{PGBR_S3_SECRET};
	$server_b = start_s3_server('b', %tls, 'repo1-s3-ca-file' => $ENV{PGBR_S3_CA_FILE});
}
like(slurp_file($server_a->logfile), qr/bucket "\Q$bucket\E"/,
	'server A says where its repository is');

my $node    = PostgreSQL::Test::Cluster->new('primary');
my $confdir = PgbrTest::tmpdir('conf');
my $conf_a  = "$confdir/via-a.conf";
my $conf_b  = "$confdir/via-b.conf";
$node->init(allows_streaming => 1, extra => ['--data-checksums']);

sub client_conf
{
	my ($path, $server) = @_;
	PgbrTest::client_conf(
		$path,
		port  => $server->port,
		cert  => $pg1,
		ca    => $ca,
		extra => {
			'process-max'     => 2,
			'start-fast'      => 'y',
			'archive-timeout' => 60,
		},
		sections => {
			demo => {
				PgbrTest::pg1_options($node),
			}
		});
	return;
}
client_conf($conf_a, $server_a);
client_conf($conf_b, $server_b);

# the cluster's own file, which the test points at B for a while
my $conf_node = "$confdir/node.conf";
client_conf($conf_node, $server_a);

$node->append_conf(
	'postgresql.conf', qq(
archive_mode = on
archive_library = 'pgbr'
shared_preload_libraries = 'pgbr'
pgbr.config = '$conf_node'
pgbr.stanza = 'demo'
max_worker_processes = 16
wal_keep_size = '2GB'
log_min_messages = info
));
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub pgbr_via
{
	my ($conf, @args) = @_;
	return PgbrTest::run_pgbr({ timeout => 300 }, "--config=$conf", '--stanza=demo', @args);
}

sub status_dir { return $node->data_dir . '/pg_wal/archive_status'; }

sub has_status { return -e status_dir() . "/$_[0].$_[1]"; }

sub ready_files
{
	opendir(my $dh, status_dir()) or die "opendir: $!";
	my @r = sort map { /^(.*)\.ready$/ ? $1 : () } readdir($dh);
	closedir $dh;
	return @r;
}

sub wait_until { return PgbrTest::wait_until(@_); }

# Polls until no .ready file is left, waking the archiver every 5 s (after
# failures it otherwise sleeps up to 60 s, as PostgreSQL does).
sub wait_archived
{
	my ($timeout) = @_;
	my $deadline  = time() + $timeout;
	my $next_wake = time() + 5;
	while (1)
	{
		my @ready = ready_files();
		return 1 unless @ready;
		if (time() > $deadline)
		{
			diag "still .ready after ${timeout}s: @ready";
			return 0;
		}
		if (time() >= $next_wake)
		{
			sql('SELECT pg_reload_conf()');
			$next_wake = time() + 5;
		}
		usleep(200_000);
	}
}

sub archiver_failed
{
	return sql('SELECT failed_count FROM pg_stat_archiver');
}

sub sha256_file { return Digest::SHA->new(256)->addfile($_[0], 'b')->hexdigest; }

# Completes $n segments; returns their names and SHA-256.
sub burst
{
	my ($n) = @_;
	my $one = "INSERT INTO burst SELECT g, md5(random()::text) FROM generate_series(1, 2000) g;\n"
	  . "SELECT pg_walfile_name(pg_switch_wal());\n";
	my @names = split /\n/, sql($one x $n);
	my %sum;
	foreach my $s (@names)
	{
		wait_until(30, sub { has_status($s, 'ready') || has_status($s, 'done') })
		  or die "segment $s never completed";
		$sum{$s} = sha256_file($node->data_dir . "/pg_wal/$s");
	}
	return \%sum;
}

# archive-get of every segment through $conf; the number identical.
sub retrieve_all
{
	my ($sums, $conf) = @_;
	my $dir  = PgbrTest::tmpdir('get');
	my $good = 0;
	foreach my $s (sort keys %$sums)
	{
		my ($rc, $out, $err) = pgbr_via($conf, 'archive-get', $s, "$dir/$s");
		if (defined $rc && $rc == 0 && -f "$dir/$s" && sha256_file("$dir/$s") eq $sums->{$s})
		{
			$good++;
		}
		else
		{
			diag "archive-get $s: " . ($rc // 'timeout') . " $err";
		}
		unlink "$dir/$s";
	}
	return $good;
}

###########################################################################
# 1. stanza-create, a burst through A, read back through B
###########################################################################

sql('CREATE EXTENSION pgbr');
like(sql('SELECT pgbr_stanza_create()'), qr/stanza "demo" is ready/, 'stanza-create through server A');
ok((grep { m{^\Q$prefix\E/demo/stanza\.info$} } s3_keys("$prefix/demo/")),
	'the stanza is an object in the bucket under repo1-path');
sql('CREATE TABLE burst (id int, v text)');
my $sums = burst(20);
ok(wait_archived($ARCHIVE_WAIT), 'a burst of 20 segments is archived through server A');
is(retrieve_all($sums, $conf_b), 20, 'all 20 come back byte-identical through server B');
like(sql('SELECT pgbr_check()'), qr/successfully archived/, 'pgbr_check() succeeds');

###########################################################################
# 2. The gateway dies in the middle of a burst
###########################################################################

SKIP:
{
	if (!$ENV{PGBR_S3_GATEWAY_STOP} || !$ENV{PGBR_S3_GATEWAY_START})
	{
		fail('the test knows how to stop and start the gateway '
			  . '(PGBR_S3_GATEWAY_STOP / PGBR_S3_GATEWAY_START)');
		skip 'no way to stop the gateway', 5;
	}
	my $failed0 = archiver_failed();
	my $first   = burst(10);    # the archiver is busy with these
	system($ENV{PGBR_S3_GATEWAY_STOP}) == 0 or diag 'stopping the gateway failed';
	my $second = burst(10);
	ok(wait_until(60, sub { archiver_failed() > $failed0 }),
		'with the gateway down, the archiver fails');
	ok(scalar(ready_files()) > 0, 'and WAL waits in pg_wal');
	system($ENV{PGBR_S3_GATEWAY_START}) == 0 or diag 'starting the gateway failed';
	ok(wait_archived($ARCHIVE_WAIT), 'with the gateway back, the archiver catches up');

	# every segment from the start of the test to now is in the repository
	my %all;
	opendir(my $dh, $node->data_dir . '/pg_wal') or die;
	foreach my $f (sort grep { /^[0-9A-F]{24}$/ } readdir $dh)
	{
		next unless has_status($f, 'done');
		$all{$f} = sha256_file($node->data_dir . "/pg_wal/$f");
	}
	closedir $dh;
	cmp_ok(scalar(keys %all), '>=', 40, 'at least 40 archived segments are in pg_wal');
	is(retrieve_all(\%all, $conf_b), scalar(keys %all),
		'every one of them is in the bucket, byte-identical');
}

###########################################################################
# 3. The same segment through server B: identical accepted, different refused
###########################################################################

{
	sql('CHECKPOINT');
	my ($dup) = sort keys %$sums;
	my $path = $node->data_dir . "/pg_wal/$dup";
	client_conf($conf_node, $server_b);    # the extension re-reads its file

	my $srv_off = $server_b->log_size;
	rename(status_dir() . "/$dup.done", status_dir() . "/$dup.ready") or die $!;
	sql('SELECT pg_reload_conf()');
	ok(wait_archived(60), "$dup pushed again through B with the same content: accepted");
	ok(defined $server_b->wait_for_log(
			[ qr/\Q$dup\E/, qr/already archived with the same checksum/ ], $srv_off, $LOG_WAIT),
		'server B found the copy A stored');

	open my $fh, '+<:raw', $path or die $!;
	local $/;
	my $orig = <$fh>;
	my $bad  = $orig;
	substr($bad, 9000, 1) = chr(ord(substr($bad, 9000, 1)) ^ 0xff);
	seek $fh, 0, 0;
	print $fh $bad;
	close $fh;
	my $failed0 = archiver_failed();
	$srv_off = $server_b->log_size;
	rename(status_dir() . "/$dup.done", status_dir() . "/$dup.ready") or die $!;
	sql('SELECT pg_reload_conf()');
	ok(wait_until($LOG_WAIT, sub { archiver_failed() > $failed0 }),
		"$dup with different content through B: refused");
	ok(defined $server_b->wait_for_log(
			[ qr/\Q$dup\E/, qr/different checksum/ ], $srv_off, $LOG_WAIT),
		'server B says it exists with a different checksum');
	my @stored = grep { m{/\Q$dup\E-} } s3_keys("$prefix/demo/archive/");
	is(scalar(@stored), 1, 'the bucket holds one version of the segment');

	open $fh, '+<:raw', $path or die $!;
	print $fh $orig;
	close $fh;
	ok(wait_archived(60), 'the original content is accepted again');
	client_conf($conf_node, $server_a);
}

###########################################################################
# 4. Backups through A, listed and restored through B
###########################################################################

my $SNAP = q{SELECT count(*) || ':' || sum(hashtext(b::text)) FROM burst b};
sql('CREATE TABLE small AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300) g');
sql(  'CREATE TABLE many_' . $_ . ' AS SELECT g FROM generate_series(1, 10) g') for 1 .. 30;

my $full1 = sql("SELECT pgbr_backup('full')");
like($full1, qr/^\d{8}-\d{6}F$/, "full backup $full1 through A");
my @bundles = grep { m{/backup/\Q$full1\E/bundle/} } s3_keys("$prefix/demo/backup/$full1/");
cmp_ok(scalar(@bundles), '>=', 1, 'small files went into bundle objects');
ok(!(grep { m{/\.(part|join)-|/\.token$} } s3_keys("$prefix/demo/backup/$full1/")),
	'no scratch object is left after the commit');

sql('INSERT INTO burst SELECT g, md5(g::text) FROM generate_series(1, 5000) g');
my $snap_incr = sql($SNAP);
my $incr      = sql("SELECT pgbr_backup('incr')");
like($incr, qr/^\Q$full1\E_\d{8}-\d{6}I$/, "incr backup $incr with prior $full1");
sql('SELECT pgbr_check()');

my ($rc, $out, $err) = pgbr_via($conf_b, 'info');
is($rc, 0, 'pgbr info through B') or diag $err;
like($out, qr/full backup: \Q$full1\E/, 'B lists the full backup');
like($out, qr/incr backup: \Q$incr\E/, 'B lists the incr backup');

{
	my $r = PostgreSQL::Test::Cluster->new('restored');
	($rc, $out, $err) = pgbr_via($conf_b, '--pg1-path=' . $r->data_dir, 'restore');
	is($rc, 0, 'restore of the incr chain through B') or diag $err;
	$r->append_conf('postgresql.conf',
		sprintf("port = %d\nunix_socket_directories = '%s'\narchive_mode = off\n"
			  . "shared_preload_libraries = ''\n",
			$r->port, $r->host));
	$r->append_conf('postgresql.conf', "restore_command = 'pgbr --config=$conf_b --stanza=demo archive-get %f \"%p\"'\n");
	$r->start;
	ok($r->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
		'the restored cluster finished recovery');
	is($r->safe_psql('postgres', $SNAP), $snap_incr, 'it has the data of the incr backup');
	$r->stop;
}

# one backup lock over both servers: expire through B waits for A's backup
{
	my ($in, $bout, $berr) = ('', '', '');
	sql('CREATE TABLE big AS SELECT g, repeat(md5(g::text), 20) v FROM generate_series(1, 200000) g');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
		  '-c', "SELECT pgbr_backup('full')" ],
		'<', \$in, '>', \$bout, '2>', \$berr);
	ok(wait_until(60, sub {
		(grep { m{/backup\.lock/} } s3_keys("$prefix/demo/backup.lock/")) > 0 }),
		'the running backup holds its lock object in the bucket');
	my ($erc, $eout, $eerr) = pgbr_via($conf_b, 'expire');
	isnt($erc, 0, 'expire through server B is refused while the backup runs through A');
	like($eerr, qr/backup or expire of stanza "demo" is already running/,
		'and says a backup is running');
	$h->finish;
	like($bout, qr/^\d{8}-\d{6}F$/m, 'the backup through A completed meanwhile') or diag $berr;
}

###########################################################################
# 5. Retention: a third full expires the first with its WAL
###########################################################################

{
	my @wal_before = sort grep { m{/[0-9A-F]{24}-} } s3_keys("$prefix/demo/archive/");
	my $full3 = sql("SELECT pgbr_backup('full')");
	like($full3, qr/F$/, "third full backup $full3");
	($rc, $out, $err) = pgbr_via($conf_b, 'info');
	unlike($out, qr/\Q$full1\E/, "the oldest full $full1 expired (repo1-retention-full=2)");
	unlike($out, qr/\Q$incr\E/, 'its incr went with it');
	ok(!(grep { m{/backup/\Q$full1\E/} } s3_keys("$prefix/demo/backup/")),
		'none of its objects is left in the bucket');
	my @wal_after = sort grep { m{/[0-9A-F]{24}-} } s3_keys("$prefix/demo/archive/");
	cmp_ok(scalar(@wal_after), '<', scalar(@wal_before), 'WAL older than the oldest kept backup is removed');
}

###########################################################################
# 6. verify; a damaged object
###########################################################################

($rc, $out, $err) = pgbr_via($conf_b, 'verify');
is($rc, 0, 'verify through B finds nothing wrong') or diag "$out\n$err";
{
	my ($last) = reverse sort grep { /F$/ } (sql(
		"SELECT string_agg(label, ' ') FROM pgbr_info()") =~ /(\S+)/g);
	my ($victim) = grep { m{/pg_data/.*\.zst$} } s3_keys("$prefix/demo/backup/$last/pg_data/");
	($victim) = grep { m{/bundle/} } s3_keys("$prefix/demo/backup/$last/") unless $victim;
	ok(defined $victim, "an object of backup $last to damage: " . ($victim // 'none'));
	# flip one byte in the middle: same size, other content
	my ($gcode, $content) = s3('GET', "$bucket/$victim");
	is($gcode, 200, 'the object is read back by hand');
	my $pos = int(length($content) / 2);
	substr($content, $pos, 1) = chr(ord(substr($content, $pos, 1)) ^ 0x5a);
	my $junk = PgbrTest::tmpdir('junk') . '/flipped';
	open my $fh, '>:raw', $junk or die;
	print $fh $content;
	close $fh;
	($code) = s3('PUT', "$bucket/$victim", file => $junk);
	is($code, 200, 'and written back with one byte changed');
	($rc, $out, $err) = pgbr_via($conf_b, 'verify');
	isnt($rc, 0, 'verify fails');
	like("$out$err", qr/file "[^"]+" is damaged/, 'and reports the damaged file');
	my $r = PostgreSQL::Test::Cluster->new('damaged');
	($rc, $out, $err) = pgbr_via($conf_b, '--pg1-path=' . $r->data_dir, "--set=$last", 'restore');
	isnt($rc, 0, 'a restore of that backup fails');
	like($err, qr/ERROR: \[\d+\]: file "[^"]+" of backup \Q$last\E is damaged/, 'naming the damaged file');
}

###########################################################################
# 7. A wrong secret
###########################################################################

{
	my $bad = start_s3_server('wrong',
		'repo1-s3-key'        => $ENV{PGBR_S3_KEY},
		'repo1-s3-key-secret' => 'not-the-secret');
	my $conf_bad = "$confdir/wrong.conf";
	client_conf($conf_bad, $bad);
	($rc, $out, $err) = pgbr_via($conf_bad, 'info');
	isnt($rc, 0, 'info through a server with a wrong secret fails');
	like($err, qr/\Q$bucket\E/, 'the error names the bucket');
	like($err, qr/SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/, 'and the S3 error code');
	like(slurp_file($bad->logfile), qr/SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/,
		'the server log has it too');
	$bad->stop;

	# HTTPS without the gateway's CA: the certificate is refused
	my $noca = start_s3_server('noca', %tls,
		'repo1-s3-key'        => $ENV{PGBR_S3_KEY},
		'repo1-s3-key-secret' => $ENV{PGBR_S3_SECRET});
	my $conf_noca = "$confdir/noca.conf";
	client_conf($conf_noca, $noca);
	($rc, $out, $err) = pgbr_via($conf_noca, 'info');
	isnt($rc, 0, 'info through a server that does not trust the gateway certificate fails');
	like($err, qr/certificate|TLS|SSL/i, 'the error says it is the certificate');
	like($err, qr/repo1-s3-ca-file/, 'and names the option that fixes it');
	$noca->stop;
}

$node->stop;
$server_a->stop;
$server_b->stop;
done_testing();
