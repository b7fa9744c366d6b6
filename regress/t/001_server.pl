# Copyright (c) pgbr contributors
#
# pgbr-server as a user meets it: mutual TLS with certificates made here,
# CN -> stanza authorisation (tls-server-auth), refusals that say why,
# TLS >= 1.2 only, robustness against garbage and idle connections, reload
# on SIGHUP, clean stop on SIGTERM, refusal of a group/world-readable key.

use strict;
use warnings;

use File::Copy qw(copy);
use IO::Select;
use IO::Socket::INET;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use PgbrTest;

# How long a ping may take while other connections misbehave.
my $PING_MAX_SECONDS = 10;
# How long we wait for the server to write a log line after an event.
my $LOG_WAIT = 10;

###########################################################################
# Certificates
###########################################################################

my $certdir  = PgbrTest::tmpdir('certs');
my $ca       = PgbrTest::make_ca($certdir, 'ca');
my $srv_cert = PgbrTest::make_cert($certdir, $ca, 'backup-srv', server => 1);
my $pg1      = PgbrTest::make_cert($certdir, $ca, 'pg1-srv');
my $pg2      = PgbrTest::make_cert($certdir, $ca, 'pg2-srv');
my $intruder = PgbrTest::make_cert($certdir, $ca, 'intruder');
my $pg1_expired = PgbrTest::make_cert($certdir, $ca, 'pg1-srv',
	name => 'pg1-srv-expired', expired => 1);
my $other_ca = PgbrTest::make_ca($certdir, 'other-ca');
my $pg1_other = PgbrTest::make_cert($certdir, $other_ca, 'pg1-srv',
	name => 'pg1-srv-other-ca');

###########################################################################
# Server and client configurations
###########################################################################

my $server = PgbrTest::start_server(
	cert => $srv_cert,
	ca   => $ca,
	auth => ['pg1-srv=demo']);
note 'pgbr-server pid ' . $server->pid . ' port ' . $server->port;
my $server_pid = $server->pid;

# Client configuration for one certificate (file named after the cert).
sub client_for
{
	my ($cert, %opts) = @_;
	my $name = $cert->{name} . ($opts{suffix} || '');
	delete $opts{suffix};
	return PgbrTest::client_conf(
		"$certdir/$name.conf",
		host => 'localhost',
		port => $server->port,
		cert => $cert,
		ca   => $ca,
		%opts);
}

my %conf = map { $_->{name} => client_for($_) }
  ($pg1, $pg2, $intruder, $pg1_expired, $pg1_other);

sub hello
{
	my ($cert, $stanza) = @_;
	return PgbrTest::run_pgbr("--config=$conf{$cert->{name}}",
		"--stanza=$stanza", 'server-hello');
}

sub ping
{
	my ($cert) = @_;
	return PgbrTest::run_pgbr("--config=$conf{$cert->{name}}", 'server-ping');
}

# A failure as the contract wants it: non-zero exit (not a timeout) and one
# "ERROR: [NNN]: message" line on stderr.  Returns that line.
sub failed_with_error_ok
{
	my ($rc, $err, $what) = @_;
	ok(defined $rc && $rc != 0,
		"$what: exits non-zero (got "
		  . (defined $rc ? $rc : 'no exit code: timeout or not run') . ')');
	my ($line) = $err =~ /^(ERROR: \[\d{3}\]: .*)$/m;
	ok(defined $line, "$what: stderr has an \"ERROR: [NNN]: message\" line")
	  or diag "stderr was:\n$err";
	return defined $line ? $line : '';
}

###########################################################################
# The happy path
###########################################################################

my ($rc, $out, $err) = ping($pg1);
is($rc, 0, 'server-ping with the pg1-srv certificate succeeds')
  or diag "stdout:\n$out\nstderr:\n$err";
like($out, qr/pgbr-server/, 'server-ping prints the server identification');

($rc, $out, $err) = hello($pg1, 'demo');
is($rc, 0, 'pg1-srv is accepted for stanza demo')
  or diag "stdout:\n$out\nstderr:\n$err";

###########################################################################
# Authorisation: the CN reaches only the stanzas tls-server-auth grants
###########################################################################

my $off = $server->log_size;
($rc, $out, $err) = hello($pg1, 'other');
my $line = failed_with_error_ok($rc, $err, 'pg1-srv for stanza other');
like($line, qr/pg1-srv/, 'the error names the certificate CN pg1-srv');
like($line, qr/\bother\b/, 'the error names the stanza other');
ok(defined $server->wait_for_log([ qr/pg1-srv/, qr/\bother\b/ ], $off, $LOG_WAIT),
	'server log has a line naming CN pg1-srv and stanza other')
  or diag 'server log:' . $server->log_content($off);

$off = $server->log_size;
($rc, $out, $err) = hello($intruder, 'demo');
failed_with_error_ok($rc, $err, 'intruder for stanza demo');
ok( defined $server->wait_for_log(
		[ qr/intruder/, qr/not authori[sz]ed|no tls-server-auth/i ],
		$off, $LOG_WAIT),
	'server log says why intruder was refused (CN and reason on one line)')
  or diag 'server log:' . $server->log_content($off);

($rc, $out, $err) = hello($pg2, 'demo');
failed_with_error_ok($rc, $err, 'pg2-srv (no tls-server-auth entry) for stanza demo');

###########################################################################
# Certificate verification on the server side
###########################################################################

$off = $server->log_size;
($rc, $out, $err) = hello($pg1_other, 'demo');
failed_with_error_ok($rc, $err, 'pg1-srv certificate from another CA');
ok( defined $server->wait_for_log(
		qr/certificate verify failed|unable to get local issuer|verif\w* fail/i,
		$off, $LOG_WAIT),
	'server log reports the certificate verification failure')
  or diag 'server log:' . $server->log_content($off);

$off = $server->log_size;
($rc, $out, $err) = hello($pg1_expired, 'demo');
failed_with_error_ok($rc, $err, 'expired pg1-srv certificate');
ok( defined $server->wait_for_log(
		qr/expired|certificate verify failed|verif\w* fail/i, $off, $LOG_WAIT),
	'server log reports the expired certificate')
  or diag 'server log:' . $server->log_content($off);

###########################################################################
# Certificate verification on the tool side: it checks the server against
# its own CA file
###########################################################################

my $wrong_ca_conf = client_for($pg1, ca => $other_ca, suffix => '-wrong-ca');
($rc, $out, $err) =
  PgbrTest::run_pgbr("--config=$wrong_ca_conf", 'server-ping');
$line = failed_with_error_ok($rc, $err,
	'server-ping with the other CA as repo1-host-ca-file');
like($line, qr/certificate.{0,60}verif|verif.{0,60}certificate/i,
	'the error mentions certificate verification');

###########################################################################
# Protocol versions
###########################################################################

# See PgbrTest::tls_probe: SECLEVEL=0 on the client, so a failure is the
# server's refusal, not the client's.
my ($prc, $pout) = PgbrTest::tls_probe(
	port   => $server->port,
	tls1_1 => 1,
	cert   => $pg1,
	ca     => $ca);
ok(defined $prc && $prc != 0, 'a TLS 1.1 client is refused');
unlike($pout, qr/Cipher is (?!\(NONE\))/, 'no TLS 1.1 session was established');
unlike($pout, qr/legacy sigalg|no protocols available|no ciphers available/i,
	'the refusal did not come from the probing client');
like($pout,
	qr/alert protocol version|unsupported protocol|wrong version number|unexpected eof|errno=104/i,
	'the server ended the TLS 1.1 handshake')
  or diag $pout;

($prc, $pout) = PgbrTest::tls_probe(
	port       => $server->port,
	tls1_2     => 1,
	cert       => $pg1,
	ca         => $ca,
	servername => 'backup-srv',
	verify     => 1);
is($prc, 0, 'a TLS 1.2 client with a valid certificate completes the handshake')
  or diag $pout;
like($pout, qr/Protocol\s*:\s*TLSv1\.2/, 'TLS 1.2 was negotiated');

###########################################################################
# Garbage and idle connections do not stop others from being served
###########################################################################

# Write as much of $data as the peer takes within $timeout seconds; the
# server may close the connection at any point (that is fine).
sub blast
{
	my ($sock, $data, $timeout) = @_;
	$sock->blocking(0);
	my $sel      = IO::Select->new($sock);
	my $written  = 0;
	my $deadline = time() + $timeout;
	while ($written < length($data) && time() < $deadline)
	{
		next unless $sel->can_write(0.2);
		my $n = syswrite($sock, $data, 65536, $written);
		if (!defined $n)
		{
			next if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
			note "garbage connection: write stopped after $written bytes: $!";
			last;
		}
		$written += $n;
	}
	return $written;
}

sub timed_ping
{
	my ($what) = @_;
	my $t0 = time();
	my ($rc, $out, $err) =
	  PgbrTest::run_pgbr({ timeout => 3 * $PING_MAX_SECONDS },
		"--config=$conf{'pg1-srv'}", 'server-ping');
	my $elapsed = time() - $t0;
	is($rc, 0, "$what: server-ping succeeds") or diag "stderr:\n$err";
	cmp_ok($elapsed, '<', $PING_MAX_SECONDS,
		"$what: server-ping answered within ${PING_MAX_SECONDS}s");
	return;
}

my $random;
{
	open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
	read($fh, $random, 200 * 1024) == 200 * 1024 or die "short read";
	close $fh;
}

my $garbage = IO::Socket::INET->new(
	PeerAddr => '127.0.0.1',
	PeerPort => $server->port,
	Proto    => 'tcp',
	Timeout  => 5);
ok($garbage, 'plain TCP connection for garbage opened');
if ($garbage)
{
	my $n = blast($garbage, $random, 5);
	note "wrote $n bytes of random data";
}
timed_ping('while a connection sent 200 KB of random bytes');

my $idle = IO::Socket::INET->new(
	PeerAddr => '127.0.0.1',
	PeerPort => $server->port,
	Proto    => 'tcp',
	Timeout  => 5);
ok($idle, 'idle TCP connection opened (nothing will be sent on it)');
timed_ping('while a connection stays open and silent');

($rc, $out, $err) = hello($pg1, 'demo');
is($rc, 0, 'pg1-srv is still accepted for demo while the idle connection is open')
  or diag "stderr:\n$err";

ok($server->is_alive, 'pgbr-server is still running after garbage and idle connections');
is($server->pid, $server_pid, 'it is the same process');
close $garbage if $garbage;
close $idle    if $idle;

###########################################################################
# Reload on SIGHUP: new tls-server-auth entry takes effect without restart
###########################################################################

$off = $server->log_size;
$server->rewrite_conf(
	{ 'tls-server-auth' => [ 'pg1-srv=demo', 'intruder=demo' ] });
ok($server->reload, 'SIGHUP sent');
ok(defined $server->wait_for_log(qr/reload/i, $off, $LOG_WAIT),
	'server log says the configuration was reloaded')
  or diag 'server log:' . $server->log_content($off);

($rc, $out, $err) = hello($intruder, 'demo');
is($rc, 0, 'intruder is accepted for demo after the reload')
  or diag "stderr:\n$err";
($rc, $out, $err) = hello($intruder, 'other');
failed_with_error_ok($rc, $err, 'intruder for stanza other after the reload');
($rc, $out, $err) = hello($pg1, 'demo');
is($rc, 0, 'pg1-srv is still accepted for demo after the reload')
  or diag "stderr:\n$err";
($rc, $out, $err) = hello($pg2, 'demo');
failed_with_error_ok($rc, $err, 'pg2-srv is still refused after the reload');
is($server->pid, $server_pid, 'no restart happened (same pid)');

###########################################################################
# SIGTERM stops the server cleanly
###########################################################################

$off = $server->log_size;
my $code = $server->stop;
is($code, 0, 'SIGTERM stops pgbr-server with exit status 0');
like($server->log_content($off), qr/stop|shut\s*down|terminat|exit/i,
	'server log says it stopped');

###########################################################################
# A key file readable by others is refused at start
###########################################################################

my $keydir = PgbrTest::tmpdir('badkey');
my $loose_key = "$keydir/backup-srv.key";
copy($srv_cert->{key}, $loose_key) or die "copy: $!";
chmod(0644, $loose_key) or die "chmod: $!";

my $bad = PgbrTest::start_server(
	dir       => $keydir,
	name      => 'loose-key',
	cert_file => $srv_cert->{crt},
	key_file  => $loose_key,
	ca        => $ca,
	auth      => ['pg1-srv=demo'],
	no_wait   => 1);
$code = $bad->wait_exit(15);
ok(defined $code && $code != 0,
	'pgbr-server refuses to start with a key file of mode 0644 (exit '
	  . (defined $code ? $code : 'none: still running') . ')');
$bad->kill9 unless defined $code;
my $badlog = $bad->log_content;
like($badlog, qr/\Q$loose_key\E/, 'its output names the key file');
like($badlog, qr/0600|600/, 'its output says to make it mode 600');

done_testing();
