# Copyright (c) pgbr contributors
#
# pgbr-server against hostile clients, through the real protocol: mutual TLS
# and crafted frames sent by fuzz/pgbr-rawclient (make fuzz/pgbr-rawclient;
# regress/run-tests.sh builds it and passes PGBR_RAWCLIENT).
#
#   path safety   WAL names, stanza names, labels and manifest lines with
#                 "..", absolute paths, NUL bytes, too many characters;
#                 symlinks planted in the repository
#   frames        oversized, unknown type, reserved bits, garbage before
#                 HELLO, requests before HELLO, truncated bodies
#   log lines     a client cannot forge lines of the server log
#   slow clients  idle and one-byte-a-second clients are dropped and do not
#                 hold up others
#   limits        tls-server-max-connections, tls-server-max-per-client
#   TLS           not-yet-valid and expired certificates (both sides),
#                 renegotiation, key files readable by group or others
#

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Find;
use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use PgbrTest;

my $RAW = $ENV{PGBR_RAWCLIENT};
if (!defined $RAW || $RAW eq '')
{
	my $guess = abs_path(dirname(__FILE__) . '/../../fuzz/pgbr-rawclient');
	$RAW = $guess if defined $guess && -x $guess;
}
if (!defined $RAW || !-x $RAW)
{
	plan skip_all => 'fuzz/pgbr-rawclient is not built (make fuzz/pgbr-rawclient,'
	  . ' or set PGBR_RAWCLIENT)';
}
note "raw client: $RAW";

my $SYSID  = '7300000000000000001';
my $SYSID2 = '7300000000000000002';
my $SEG    = 1048576;
# what pgbr-server gives a new client for the handshake and its first frame
# (SESSION_START_TIMEOUT_MS in repo-server/session.c)
my $START_TIMEOUT = 30;
my $LOG_WAIT      = 10;

###########################################################################
# Certificates, servers, the raw client
###########################################################################

my $certdir = PgbrTest::tmpdir('certs');
my $ca      = PgbrTest::make_ca($certdir, 'ca');
my $srv     = PgbrTest::make_cert($certdir, $ca, 'backup-srv', server => 1);
my $pg1     = PgbrTest::make_cert($certdir, $ca, 'pg1-srv');
my $pg2     = PgbrTest::make_cert($certdir, $ca, 'pg2-srv');
my $admin   = PgbrTest::make_cert($certdir, $ca, 'admin');
my $pg1_future = PgbrTest::make_cert($certdir, $ca, 'pg1-srv',
	name => 'pg1-srv-future', not_yet_valid => 1);
my $pg1_expired = PgbrTest::make_cert($certdir, $ca, 'pg1-srv',
	name => 'pg1-srv-expired', expired => 1);
my $srv_expired = PgbrTest::make_cert($certdir, $ca, 'backup-srv',
	name => 'backup-srv-expired', server => 1, expired => 1);
my $srv_future = PgbrTest::make_cert($certdir, $ca, 'backup-srv',
	name => 'backup-srv-future', server => 1, not_yet_valid => 1);

my $server = PgbrTest::start_server(
	cert => $srv,
	ca   => $ca,
	auth => [ 'pg1-srv=demo', 'pg2-srv=other', 'admin=*' ]);
my $server_pid = $server->pid;
my $repo       = $server->dir . '/repo';
note "pgbr-server pid $server_pid port " . $server->port . " repository $repo";

sub put_file
{
	my ($path, $content) = @_;
	open my $fh, '>', $path or die "could not create \"$path\": $!";
	print $fh $content;
	close $fh or die "could not write \"$path\": $!";
	return;
}

# A directory outside repo1-path, with a file that must never be served.
my $outside = PgbrTest::tmpdir('outside');
put_file("$outside/canary", "OUTSIDE-CANARY\n");

# raw([\%opts,] $cert, @steps): runs pgbr-rawclient; returns its stdout.
# $cert undef: no client certificate.  %opts: port, timeout (client I/O,
# default 15 s), tls12, run_timeout.
sub raw
{
	my $o = (@_ && ref $_[0] eq 'HASH' && !exists $_[0]{crt}) ? shift : {};
	my ($cert, @steps) = @_;
	my @cmd = (
		$RAW, '--host=localhost',
		'--port=' . ($o->{port} || $server->port),
		"--ca=$ca->{crt}", '--timeout=' . ($o->{timeout} || 15));
	push @cmd, "--cert=$cert->{crt}", "--key=$cert->{key}" if $cert;
	push @cmd, '--tls1.2' if $o->{tls12};
	my ($rc, $out, $err) =
	  PgbrTest::run_cmd({ timeout => $o->{run_timeout} || 90 }, @cmd, @steps);
	diag "pgbr-rawclient exit code " . (defined $rc ? $rc : 'undef') . ": $err"
	  if !defined $rc || $rc == 2;
	return $out;
}

# The answer line of the last step of a run (the last line of the output).
sub last_line
{
	my ($out) = @_;
	my @l = grep { length } split /\n/, $out;
	return @l ? $l[-1] : '';
}

# Files and directories under $dir (relative names), for before/after checks.
sub tree
{
	my ($dir) = @_;
	my @all;
	find({ wanted => sub { push @all, $File::Find::name }, no_chdir => 1 }, $dir);
	return join("\n", sort map { substr($_, length $dir) } @all) . "\n";
}

# Everything the server may legitimately touch is under repo/ and log/.
sub outside_tree
{
	return tree($outside) . '--' . join("\n",
		grep { !m{^/(repo|log)(/|$)} } split /\n/, tree($server->dir));
}

sub ping_ok
{
	my ($what) = @_;
	my $t0  = time();
	my $out = raw($pg1, 'ping');
	my $dt  = time() - $t0;
	like(last_line($out), qr/^OK ping "pgbr-server/, "$what: ping answered");
	cmp_ok($dt, '<', 5, "$what: ping answered within 5 s");
	return;
}

sub server_alive
{
	my ($what) = @_;
	ok($server->is_alive, "$what: pgbr-server still runs");
	is($server->pid, $server_pid, "$what: same server process");
	return;
}

# Escape a string for a raw-client argument (tabs as \t).
sub esc
{
	my ($s) = @_;
	$s =~ s/\\/\\\\/g;
	$s =~ s/\t/\\t/g;
	$s =~ s/\n/\\n/g;
	return $s;
}

# A manifest line; %f overrides fields.
sub mline
{
	my (%f) = @_;
	my @v = (
		$f{kind} || 'f', $f{path}, $f{size} // 0, 1700000000,
		$f{mode} || '600', '-', $f{repo_size} // 0, $f{reference} || '-',
		$f{bundle} || '-', $f{offset} // 0, 0, '-', '-');
	return esc(join("\t", @v));
}

sub backup_end_text
{
	return 'timestamp-start=1700000000\ntimestamp-stop=1700000100\n'
	  . 'lsn-start=0/1000028\nlsn-stop=0/1000100\n'
	  . 'wal-start=000000010000000000000001\nwal-stop=000000010000000000000001\n'
	  . 'backup-from=primary';
}

# A committed full backup of one file base/1 holding $content; returns the label.
sub make_backup
{
	my ($cert, $stanza, $sysid, $content) = @_;
	my $hex = unpack('H*', $content);
	my $out = raw(
		$cert, "hello:$stanza",
		"backup-begin:full:$sysid:150004",
		'file-put:' . mline(kind => 'd', path => 'base', mode => '700'),
		'file-put:' . mline(path => 'base/1', size => length $content) . ":$hex",
		'backup-end:' . backup_end_text());
	like($out, qr/^OK backup-end "full backup size/m, "backup of stanza $stanza committed")
	  or diag $out;
	my ($label) = $out =~ /^OK backup-begin "([^"]+)"/m;
	return $label // 'none';
}

###########################################################################
# Stanzas, WAL and backups the hostile requests aim at
###########################################################################

my $out = raw($pg1, 'hello:demo', "stanza-create:$SYSID:150004:$SEG",
	"wal-seg:000000010000000000000001:$SYSID:$SEG",
	'wal-get:000000010000000000000001');
like($out, qr/^OK stanza-create/m, 'stanza demo created');
like($out, qr/^OK wal-seg/m,       'a valid WAL segment is archived');
like($out, qr/^STREAM wal-get $SEG bytes/m, 'and read back whole');
$out = raw($pg2, 'hello:other', "stanza-create:$SYSID2:150004:$SEG");
like($out, qr/^OK stanza-create/m, 'stanza other created');

my $label  = make_backup($pg1, 'demo',  $SYSID,  'demo-data');
my $label2 = make_backup($pg2, 'other', $SYSID2, 'SECRET-OF-OTHER');
my $good_line = mline(path => 'base/1', size => 9, repo_size => 9);
$out = raw($pg1, 'hello:demo', "file-get:$label:$good_line", "manifest-get:$label");
like($out, qr/^STREAM file-get 9 bytes .*first="demo-data"/m,
	'FILE_GET of a file of the backup works');
like($out, qr/^STREAM manifest-get \d+ bytes .*first="\[backup\]/m,
	'MANIFEST_GET of the backup works');

###########################################################################
# Path safety: names from the client never leave the stanza's directory
###########################################################################

my $before = outside_tree();

my @bad_wal = (
	'../../x', '../../../../../../tmp/pgbr-x', '/etc/passwd', "$outside/pwned",
	'..', '.', '', '000000010000000000000001/../../x',
	'00000001000000000000../x', '000000010000000000000001\x00../../x',
	'000000010000000000000001\x00', '00000001.history/../../../x',
	'0' x 65, 'A' x 300, '0000000100000000000000\x2f1',
	'..\x2f..\x2fstanza.info');
foreach my $name (@bad_wal)
{
	$out = raw($pg1, 'hello:demo', "wal-put:$name:00", 'reconnect', 'hello:demo',
		"wal-get:$name", 'reconnect', 'hello:demo', "wal-find:$name");
	unlike($out, qr/^(OK|STREAM) wal-(put|get|find)/m,
		"WAL name \"$name\" is refused by WAL_PUT, WAL_GET and WAL_FIND");
	like($out, qr/^ERROR wal-put \[(028|049)\]/m, "WAL_PUT \"$name\": ERROR with the reason")
	  or diag $out;
}
my $long = raw($pg1, 'hello:demo', 'wal-put:' . ('0' x 65) . ':00');
like($long, qr/^ERROR wal-put \[049\] malformed/m,
	'a WAL name longer than 64 bytes is a malformed message');
my $nul = raw($pg1, 'hello:demo', 'wal-put:000000010000000000000002\x00:00');
like($nul, qr/^ERROR wal-put \[049\] malformed/m,
	'a WAL name with a NUL byte is a malformed message');

my @bad_stanza = (
	'..', '.', '../demo', '../other', 'demo/../other', '/etc', "$outside",
	'.hidden', 'a' x 65, 'demo\x00', 'demo\x00/../other', '', 'de mo',
	'..\x2f..', 'demo\n', 'demo\x01', "\xc3\xbc");
foreach my $st (@bad_stanza)
{
	$out = raw($admin, "hello:$st", "stanza-create:$SYSID:150004:$SEG");
	unlike($out, qr/^OK/m,
		"HELLO for stanza \"$st\" is refused (certificate granted every stanza)");
}
$out = raw($pg1, 'hello:other');
like(last_line($out), qr/^ERROR hello \[058\]/,
	'pg1-srv (granted demo) is refused for stanza other');

my @bad_labels = (
	'../../x', '..', '/etc/passwd', "$label/../../../other/backup/$label2",
	"$label\\x00", "$label/..", 'x' x 65, "../../other/backup/$label2",
	"${label}x", '', '20251117-134141F/../../x');
foreach my $l (@bad_labels)
{
	$out = raw($pg1, 'hello:demo', "manifest-get:$l", 'reconnect', 'hello:demo',
		"file-get:$l:$good_line", 'reconnect', 'hello:demo', "backup-join:$l:abc");
	unlike($out, qr/^(OK|STREAM) (manifest-get|file-get|backup-join)/m,
		"label \"$l\" is refused by MANIFEST_GET, FILE_GET and BACKUP_JOIN");
}

my @bad_lines = (
	[ 'path ../../../stanza.info',
		mline(path => '../../../stanza.info', size => 9, repo_size => 9) ],
	[ 'path ../../other/backup/LABEL2/pg_data/base/1',
		mline(path => "../../../other/backup/$label2/pg_data/base/1", repo_size => 15) ],
	[ 'absolute path', mline(path => '/etc/passwd', repo_size => 9) ],
	[ 'absolute path outside', mline(path => "$outside/canary", repo_size => 9) ],
	[ 'path base/../../..', mline(path => 'base/../../../stanza.info', repo_size => 9) ],
	[ 'path with .', mline(path => './base/1', repo_size => 9) ],
	[ 'path with //', mline(path => 'base//1', repo_size => 9) ],
	[ 'path with a newline', mline(path => "base/1\nx", repo_size => 9) ],
	[ 'path too long', mline(path => join('/', ('a' x 200) x 6), repo_size => 9) ],
	[ 'bundle ../x', mline(path => 'base/1', bundle => '../x', repo_size => 9) ],
	[ 'bundle ..', mline(path => 'base/1', bundle => '..', repo_size => 9) ],
	[ 'bundle a/b', mline(path => 'base/1', bundle => 'a/b', repo_size => 9) ],
	[ 'bundle absolute', mline(path => 'base/1', bundle => '/etc/passwd', repo_size => 9) ],
	[ 'reference ../x', mline(path => 'base/1', reference => '../x', repo_size => 9) ],
	[ 'directory', mline(kind => 'd', path => 'base') ]);
foreach my $case (@bad_lines)
{
	my ($what, $line) = @$case;
	$out = raw($pg1, 'hello:demo', "file-get:$label:$line");
	unlike($out, qr/^(OK|STREAM) file-get/m, "FILE_GET with a line with $what is refused");
	unlike($out, qr/OUTSIDE-CANARY|SECRET-OF-OTHER|root:/, "FILE_GET with $what: nothing served");
}

# FILE_PUT: the same lines cannot place a file outside the backup.  Each
# refusal ends the connection, and with it the backup it began.
sub in_backup
{
	my (@steps) = @_;
	my $o = '';
	for (1 .. 50)
	{
		$o = raw($pg1, 'hello:demo', "backup-begin:full:$SYSID:150004", @steps);
		last unless $o =~ /^ERROR backup-begin \[061\]/m;
		usleep(100_000);
	}
	return $o;
}
foreach my $case (@bad_lines[ 0 .. 4, 9 .. 12 ])
{
	my ($what, $line) = @$case;
	$out = in_backup("file-put:$line:41");
	like($out, qr/^OK backup-begin/m, "FILE_PUT with $what: backup begun");
	unlike($out, qr/^OK file-put/m, "FILE_PUT with a line with $what is refused");
}
$out = in_backup('file-put:' . mline(kind => 'l', path => 'pg_tblspc/1') . '\t', 'backup-abort');
unlike($out, qr/^OK file-put/m, 'FILE_PUT of a line with 14 fields is refused (found by fuzzing)');

is(outside_tree(), $before,
	'nothing was created or removed outside repo1-path by the requests above');
ok(!-e "$repo/x" && !-e "$repo/demo/x" && !-e dirname($repo) . '/x',
	'no file "x" next to the stanza directories');

###########################################################################
# Symlinks planted in the repository: never followed outside
###########################################################################

# a WAL directory replaced by a symlink to a directory outside repo1-path
my $waldir = "$repo/demo/archive/0000000100000000";
rename($waldir, "$waldir.moved") or die "rename $waldir: $!";
symlink($outside, $waldir) or die "symlink: $!";
my $hist = '000000010000000000000002.00000028.backup';
$out = raw($pg1, 'hello:demo', "wal-put:$hist:41424344");
my @planted = glob("$outside/0000*");
is(scalar @planted, 0, 'WAL_PUT does not write through a symlinked archive directory')
  or diag "written outside: @planted\nanswer: " . last_line($out);
unlink @planted;

# a file outside, reachable only through that symlink
unlink glob("$outside/0000*");
put_file("$outside/000000010000000000000005-" . ('ab' x 32) . '.raw',
	"OUTSIDE-CANARY\n");
$out = raw($pg1, 'hello:demo', 'wal-get:000000010000000000000005');
unlike($out, qr/^STREAM wal-get/m, 'WAL_GET does not read through a symlinked archive directory');
unlink glob("$outside/0000*");
unlink $waldir;
rename("$waldir.moved", $waldir) or die "rename back: $!";

# the last component as a symlink is refused (O_NOFOLLOW)
my ($seg1) = glob("$waldir/000000010000000000000001-*");
if (defined $seg1)
{
	rename($seg1, "$seg1.moved") or die $!;
	symlink("$outside/canary", $seg1) or die $!;
	$out = raw($pg1, 'hello:demo', 'wal-get:000000010000000000000001');
	unlike($out, qr/OUTSIDE-CANARY|^STREAM/m,
		'WAL_GET does not follow a symlink planted as the WAL file itself');
	unlink $seg1;
	rename("$seg1.moved", $seg1) or die $!;
}
else
{
	fail('archived segment 000000010000000000000001 found');
}

# a backup directory that is a symlink to another stanza's backup
my $fake = '20000101-000000F';
symlink("$repo/other/backup/$label2", "$repo/demo/backup/$fake") or die "symlink: $!";
$out = raw($pg1, 'hello:demo', "manifest-get:$fake", 'reconnect', 'hello:demo',
	"file-get:$fake:" . mline(path => 'base/1', size => 15, repo_size => 15));
unlike($out, qr/SECRET-OF-OTHER|system-id=$SYSID2/,
	'MANIFEST_GET and FILE_GET do not read another stanza through a symlinked backup');
unlink "$repo/demo/backup/$fake";

# pg_data of a backup replaced by a symlink to a directory outside
my $pgdata = "$repo/demo/backup/$label/pg_data";
rename($pgdata, "$pgdata.moved") or die "rename: $!";
symlink($outside, $pgdata) or die "symlink: $!";
put_file("$outside/leak.raw", "OUTSIDE-CANARY\n");
$out = raw($pg1, 'hello:demo', "file-get:$label:" . mline(path => 'leak', size => 15, repo_size => 15));
unlike($out, qr/OUTSIDE-CANARY/, 'FILE_GET does not read through a symlinked pg_data');
unlink "$outside/leak.raw", $pgdata;
rename("$pgdata.moved", $pgdata) or die "rename back: $!";
server_alive('after the symlink tests');

###########################################################################
# Malformed frames: the connection is dropped, the server goes on
###########################################################################

my @frames = (
	[ 'oversized HELLO (2 MB announced)', 'oversize:HELLO:2000000', qr/exceeds the limit/ ],
	[ 'frame announcing 4 GB', 'oversize:DATA:4294967295', qr/exceeds the limit/ ],
	[ 'unknown message type 99', 'frame:99:00', qr/unknown message type 99/ ],
	[ 'message type 0', 'frame:0:', qr/unknown message type 0/ ],
	[ 'message type 255', 'frame:255:', qr/unknown message type 255/ ],
	[ 'reserved header bits', 'raw:0401000000000000', qr/reserved header bits/ ],
	[ 'an HTTP request instead of HELLO', 'raw:474554202f20485454502f312e310d0a0d0a',
		qr/unknown message type 71/ ]);
foreach my $f (@frames)
{
	my ($what, $step, $logre) = @$f;
	my $off = $server->log_size;
	$out = raw($pg1, $step, 'ping');
	like($out, qr/^CLOSED/m, "$what: the server closes the connection");
	unlike($out, qr/^OK ping/m, "$what: nothing more is served on it");
	ok(defined $server->wait_for_log($logre, $off, $LOG_WAIT), "$what: the server log says why")
	  or diag $server->log_content($off);
}
$out = raw($pg1, 'hello:demo', 'oversize:WAL_PUT:1048577', 'ping');
like($out, qr/^CLOSED oversize/m, 'a frame one byte over the limit after HELLO drops the connection');

foreach my $seed (1 .. 3)
{
	$out = raw($pg1, "junk:65536:$seed", 'ping');
	unlike($out, qr/^OK ping/m,
		"64 kB of pseudo-random bytes (seed $seed) after the handshake: connection dropped");
}

$out = raw($pg1, 'frame:WAL_GET:0000000130');
like(last_line($out), qr/^ERROR frame \[049\] WAL_GET request before HELLO/,
	'a request before HELLO is refused');
$out = raw($pg1, 'frame:HELLO:50474252');
like(last_line($out), qr/^ERROR frame \[049\] malformed HELLO/, 'a truncated HELLO is refused');
$out = raw($pg1, 'frame:HELLO:00000000000100000000000000000004', 'ping');
like($out, qr/^ERROR frame \[049\] client is not a pgbr client/m, 'a HELLO with a bad magic is refused');
$out = raw($pg1, 'hello:demo', 'hello:demo');
like(last_line($out), qr/^ERROR hello \[049\] a session is already open/, 'a second HELLO is refused');
$out = raw($pg1, 'hello:demo', 'frame:DATA:00');
like(last_line($out), qr/^ERROR frame \[049\] unexpected DATA request/,
	'DATA outside a stream is refused');
$out = raw($pg1, 'hello:demo', 'frame:STANZA_CREATE:0001');
like(last_line($out), qr/^ERROR frame \[049\] malformed stanza/, 'a truncated STANZA_CREATE is refused');

server_alive('after malformed frames');
ping_ok('after malformed frames');

###########################################################################
# What a client sends cannot forge lines of the server log
###########################################################################

my $off = $server->log_size;
raw(undef, 'hello:demo:prog\nFORGED-BY-PROGRAM P00 INFO: all is well');
raw(undef, 'hello:x\nFORGED-BY-STANZA');
raw($pg1, 'hello:demo', 'wal-put:\nFORGED-BY-WAL-NAME:00');
raw($pg1, 'hello:demo', "file-get:$label:" . mline(path => "a\nFORGED-BY-PATH"));
$server->wait_for_log(qr/FORGED-BY-PATH/, $off, $LOG_WAIT);
my $forged = $server->log_content($off);
unlike($forged, qr/^FORGED/m, 'no log line starts with text chosen by a client')
  or diag $forged;

###########################################################################
# Idle and slow clients are dropped and do not hold up others
###########################################################################

sub start_raw
{
	my ($cert, @steps) = @_;
	my ($o, $e) = ('', '');
	my @cmd = ($RAW, '--host=localhost', '--port=' . $server->port,
		"--ca=$ca->{crt}", '--timeout=90', "--cert=$cert->{crt}",
		"--key=$cert->{key}", @steps);
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \$o, '2>', \$e,
		IPC::Run::timeout(120));
	return { h => $h, out => \$o, err => \$e };
}

my $t_start = time();
# TLS handshake, then nothing
my $idle = start_raw($pg1, 'idle:' . ($START_TIMEOUT + 20));
# a HELLO announcing 100 bytes, sent one byte a second for 45 s
my $slow = start_raw($pg1, 'slow:' . '0100000000000064' . ('50' x 37) . ':1000');
# the start of a TLS ClientHello, one byte a second (in a child process)
my $hs_pid = open(my $hs_fh, '-|');
die "fork: $!" unless defined $hs_pid;
if ($hs_pid == 0)
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $server->port,
		Proto => 'tcp', Timeout => 5) or do { print "no connection\n"; exit 0 };
	my $hello = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" . ("\x5a" x 34);
	my $t0 = time();
	local $SIG{PIPE} = 'IGNORE';
	for my $i (0 .. length($hello) - 1)
	{
		my $buf;
		if (IO::Select->new($s)->can_read(0) && !sysread($s, $buf, 1)
			|| !defined syswrite($s, substr($hello, $i, 1)))
		{
			printf "closed after %d bytes, %.1fs\n", $i, time() - $t0;
			exit 0;
		}
		sleep 1;
	}
	printf "open after %d bytes, %.1fs\n", length($hello), time() - $t0;
	exit 0;
}
# plain TCP, no handshake
my $tcp = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $server->port,
	Proto => 'tcp', Timeout => 5);
ok($tcp, 'plain TCP connection opened (no TLS handshake will follow)');

# others are served meanwhile
for my $i (1 .. 3)
{
	sleep 8;
	ping_ok("while idle and slow clients are connected ($i)");
}
my $tcp_closed;
{
	my $sel = IO::Select->new($tcp);
	my $left = $START_TIMEOUT + 15 - (time() - $t_start);
	if ($sel->can_read($left > 0 ? $left : 1))
	{
		my $buf;
		my $n = sysread($tcp, $buf, 1);
		$tcp_closed = time() - $t_start if defined $n && $n == 0 || !defined $n;
	}
}
ok(defined $tcp_closed && $tcp_closed < $START_TIMEOUT + 5,
	'a TCP client that never starts TLS is dropped within the start timeout ('
	  . (defined $tcp_closed ? sprintf('%.1f s', $tcp_closed) : 'not dropped') . ')');
close $tcp;

$idle->{h}->finish;
my ($idle_s) = ${ $idle->{out} } =~ /IDLE closed by server after ([\d.]+)s/;
ok(defined $idle_s && $idle_s < $START_TIMEOUT + 5,
	'a TLS client that sends nothing is dropped within the start timeout ('
	  . (defined $idle_s ? "${idle_s} s" : ${ $idle->{out} }) . ')');

$slow->{h}->finish;
my $slow_out = ${ $slow->{out} };
note "slow client: $slow_out";
like($slow_out, qr/SLOW closed by server after \d+ of \d+ bytes, (\d+)/,
	'a client sending one byte a second before HELLO is dropped');
my ($slow_s) = $slow_out =~ /SLOW closed by server after \d+ of \d+ bytes, ([\d.]+)s/;
ok(defined $slow_s && $slow_s < $START_TIMEOUT + 5,
	'... within the start timeout');
my $hs_out = <$hs_fh> // '';
close $hs_fh;
note "slow TLS handshake: $hs_out";
my ($hs_s) = $hs_out =~ /^closed after \d+ bytes, ([\d.]+)s/;
ok(defined $hs_s && $hs_s < $START_TIMEOUT + 5,
	'a client sending its TLS handshake one byte a second is dropped within the start timeout');
ping_ok('after the idle and slow clients');

###########################################################################
# Connection limits
###########################################################################

my $lim = PgbrTest::start_server(
	name   => 'limits',
	cert   => $srv,
	ca     => $ca,
	auth   => ['pg1-srv=demo'],
	global => {
		'tls-server-max-connections' => 3,
		'tls-server-max-per-client'  => 2,
	});

sub tcp_from
{
	my ($local) = @_;
	return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $lim->port,
		LocalAddr => $local, Proto => 'tcp', Timeout => 5);
}

# true if the server closed the socket within $t seconds
sub closed_within
{
	my ($sock, $t) = @_;
	my $sel = IO::Select->new($sock);
	return 0 unless $sel->can_read($t);
	my $buf;
	my $n = sysread($sock, $buf, 1);
	return !defined $n || $n == 0;
}

# the probe connection of start_server must be gone before we count
sleep 1;
my @held;
$off = $lim->log_size;
push @held, tcp_from('127.0.0.1') for 1 .. 2;
ok(!closed_within($_, 1), 'a connection within the limits is kept') foreach @held;
my $third = tcp_from('127.0.0.1');
ok($third && closed_within($third, 5),
	'a third connection from 127.0.0.1 is closed (tls-server-max-per-client=2)');
ok( defined $lim->wait_for_log(
		[ qr/refused connection from 127\.0\.0\.1/, qr/tls-server-max-per-client/ ],
		$off, $LOG_WAIT),
	'the log says which client and which limit');
my $other_client = tcp_from('127.0.0.2');
SKIP:
{
	skip 'cannot connect from 127.0.0.2', 3 unless $other_client;
	ok(!closed_within($other_client, 1), 'a connection from another address is kept (3 in total)');
	push @held, $other_client;
	my $fourth = tcp_from('127.0.0.3');
	ok($fourth && closed_within($fourth, 5),
		'a fourth connection is closed (tls-server-max-connections=3)');
	ok( defined $lim->wait_for_log(
			[ qr/refused connection from 127\.0\.0\.3/, qr/tls-server-max-connections/ ],
			$off, $LOG_WAIT),
		'the log names the total limit');
}
close $_ foreach @held;
{
	my $ok = 0;
	for (1 .. 50)
	{
		my $o = raw({ port => $lim->port }, $pg1, 'ping');
		if ($o =~ /^OK ping/m) { $ok = 1; last }
		usleep(200_000);
	}
	ok($ok, 'once the connections are closed, clients are served again');
}
is($lim->stop, 0, 'the limits server stops cleanly');

###########################################################################
# TLS hygiene
###########################################################################

$off = $server->log_size;
$out = raw($pg1_future, 'hello:demo');
unlike($out, qr/^OK hello/m, 'a client certificate that is not yet valid is refused');
ok(defined $server->wait_for_log(qr/not yet valid/, $off, $LOG_WAIT),
	'the server log says the certificate is not yet valid')
  or diag $server->log_content($off);
$out = raw($pg1_expired, 'hello:demo');
unlike($out, qr/^OK hello/m, 'an expired client certificate is refused');

foreach my $case ([ 'expired', $srv_expired, qr/expired/, 'expired' ],
	[ 'not yet valid', $srv_future, qr/not yet valid/, 'future' ])
{
	my ($what, $cert, $re, $name) = @$case;
	my $bad = PgbrTest::start_server(name => "server-$name", cert => $cert, ca => $ca,
		auth => ['pg1-srv=demo']);
	$out = raw({ port => $bad->port }, $pg1, 'ping');
	like($out, qr/^CONNECT-FAILED \[059\].*$re/m,
		"a client refuses a server whose certificate is $what");
	$bad->stop;
}

$out = raw({ tls12 => 1 }, $pg1, 'ping', 'renegotiate', 'ping');
like($out, qr/^CONNECTED TLSv1\.2/m, 'TLS 1.2 session for the renegotiation test');
like($out, qr/^RENEGOTIATE refused/m, 'the server refuses a TLS 1.2 renegotiation');
ping_ok('after the renegotiation attempt');

foreach my $mode (0640, 0604, 0660)
{
	my $dir = PgbrTest::tmpdir('key');
	my $key = "$dir/backup-srv.key";
	copy($srv->{key}, $key) or die "copy: $!";
	chmod($mode, $key) or die "chmod: $!";
	my $bad = PgbrTest::start_server(dir => $dir, name => sprintf('key-%04o', $mode),
		cert_file => $srv->{crt}, key_file => $key, ca => $ca, auth => ['pg1-srv=demo'],
		no_wait => 1);
	my $code = $bad->wait_exit(15);
	ok(defined $code && $code != 0, sprintf('a key file of mode %04o is refused at start', $mode));
	$bad->kill9 unless defined $code;
	my $log = $bad->log_content;
	like($log, qr/\Q$key\E/, sprintf('mode %04o: the message names the key file', $mode));
	like($log, qr/0600/, sprintf('mode %04o: the message says to use mode 0600', $mode));
}

server_alive('at the end');
is($server->stop, 0, 'pgbr-server stops cleanly');

done_testing();
