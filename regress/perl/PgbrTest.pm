# Copyright (c) pgbr contributors

=pod

=head1 NAME

PgbrTest - helpers for the pgbr TAP tests: certificates, configuration files,
a real pgbr-server in the background, running the pgbr tool, TLS probes

=head1 SYNOPSIS

  use PostgreSQL::Test::Utils;
  use Test::More;
  use PgbrTest;

  my $dir = PgbrTest::tmpdir();
  my $ca  = PgbrTest::make_ca($dir, 'ca');
  my $srv_cert = PgbrTest::make_cert($dir, $ca, 'backup-srv', server => 1);
  my $pg1 = PgbrTest::make_cert($dir, $ca, 'pg1-srv');

  my $srv = PgbrTest::start_server(
      cert => $srv_cert, ca => $ca, auth => ['pg1-srv=demo']);

  my $conf = PgbrTest::client_conf("$dir/pg1.conf",
      port => $srv->port, cert => $pg1, ca => $ca);
  my ($rc, $out, $err) = PgbrTest::run_pgbr("--config=$conf", 'server-ping');

  is($srv->stop, 0, 'server stopped cleanly');

=head1 DESCRIPTION

Everything here works as an unprivileged user (the tests run as C<postgres>
when the test command is started as root): files are created in temporary
directories the caller owns, key files are made mode 0600.

Functions that run a program return its exit code the way a shell reports it:
the exit status when the program exited, C<128 + signal> when a signal killed
it, C<undef> when it did not finish before the timeout (it is killed then).

=cut

package PgbrTest;

use strict;
use warnings;

use Carp;
use Cwd qw(abs_path);
use Fcntl qw(SEEK_SET);
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use File::Spec;
use File::Temp ();
use IO::Socket::INET;
use IPC::Run ();
use POSIX qw(strftime);
use Test::More ();
use Time::HiRes qw(usleep time);

our $VERSION = '0.1';

# Default timeouts, in seconds.
our $RUN_TIMEOUT   = 60;    # run_pgbr
our $PROBE_TIMEOUT = 10;    # tls_probe
our $START_TIMEOUT = 10;    # start_server: port must accept connections
our $STOP_TIMEOUT  = 30;    # stop: process must exit after SIGTERM

# Every server this process started, so that none outlives the test script.
my %servers;
my $owner_pid = $$;

###########################################################################
# Small utilities
###########################################################################

=pod

=head2 Paths and directories

=over

=item PgbrTest::tmpdir([$prefix])

A fresh temporary directory, removed at the end unless the test failed or
C<PG_TEST_NOCLEAN> is set.  Uses C<PostgreSQL::Test::Utils::tempdir> (under
C<$TESTDIR/tmp_check>) when that module is loaded, else File::Temp under
C<$TMPDIR>.  Always an absolute path.

=cut

sub tmpdir
{
	my ($prefix) = @_;
	$prefix = 'pgbr' unless defined $prefix;
	my $dir;
	if (defined &PostgreSQL::Test::Utils::tempdir)
	{
		$dir = PostgreSQL::Test::Utils::tempdir($prefix);
	}
	else
	{
		$dir = File::Temp::tempdir(
			"${prefix}_XXXX",
			TMPDIR  => 1,
			CLEANUP => !defined $ENV{PG_TEST_NOCLEAN});
	}
	return abs_path($dir);
}

# Directory where logs that must survive the test go (tmp_check/log).
sub _log_dir
{
	no warnings 'once';
	my $dir = $PostgreSQL::Test::Utils::log_path;
	if (!defined $dir || !-d $dir)
	{
		$dir = tmpdir('pgbr_log');
	}
	return abs_path($dir);
}

# Name of the running test script without extension, e.g. "001_server".
sub _test_name
{
	my $name = basename($0);
	$name =~ s/\.[^.]+$//;
	return $name;
}

my $bindir_cache;

=pod

=item PgbrTest::bindir()

C<pg_config --bindir> (the C<pg_config> found in PATH).

=cut

sub bindir
{
	return $bindir_cache if defined $bindir_cache;
	my ($out, $err);
	IPC::Run::run([ 'pg_config', '--bindir' ], '<', \undef, '>', \$out,
		'2>', \$err)
	  or croak "pg_config --bindir failed: $err";
	chomp $out;
	$bindir_cache = $out;
	return $bindir_cache;
}

=pod

=item PgbrTest::pgbr_bin()

Absolute path of the installed C<pgbr> tool: C<$PGBR_BIN> if set, else
C<pg_config --bindir>/pgbr.

=cut

sub pgbr_bin
{
	return $ENV{PGBR_BIN} if defined $ENV{PGBR_BIN} && $ENV{PGBR_BIN} ne '';
	return bindir() . '/pgbr';
}

=pod

=item PgbrTest::server_bin()

Path of C<pgbr-server>: C<$PGBR_SERVER_BIN> if set, else the first
C<pgbr-server> in PATH, else C<pg_config --bindir>/pgbr-server.

=cut

sub server_bin
{
	return $ENV{PGBR_SERVER_BIN}
	  if defined $ENV{PGBR_SERVER_BIN} && $ENV{PGBR_SERVER_BIN} ne '';
	foreach my $d (File::Spec->path)
	{
		my $p = "$d/pgbr-server";
		return $p if -f $p && -x _;
	}
	return bindir() . '/pgbr-server';
}

=pod

=item PgbrTest::free_port()

A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks
it: a socket is bound to port 0, its port read and the socket closed).

=back

=cut

sub free_port
{
	my $sock = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Proto     => 'tcp',
		Listen    => 1,
		ReuseAddr => 1) or croak "cannot bind a socket on 127.0.0.1: $!";
	my $port = $sock->sockport;
	close $sock;
	return $port;
}

=pod

=over

=item PgbrTest::wait_until($timeout, $cond)

Calls C<< $cond->() >> every 0.2 s until it returns true (then returns 1) or
C<$timeout> seconds passed (then returns 0).

=back

=cut

sub wait_until
{
	my ($timeout, $cond) = @_;
	my $deadline = Time::HiRes::time() + $timeout;
	while (1)
	{
		return 1 if $cond->();
		return 0 if Time::HiRes::time() > $deadline;
		Time::HiRes::usleep(200_000);
	}
}

=pod

=over

=item PgbrTest::pg1_options($node)

The options that point pgbr at a PostgreSQL::Test::Cluster node as its
pg1: C<pg1-path>, C<pg1-port>, C<pg1-socket-path> (a hash of them, to put
in a stanza section of client_conf).

=back

=cut

sub pg1_options
{
	my ($node) = @_;
	return (
		'pg1-path'        => $node->data_dir,
		'pg1-port'        => $node->port,
		'pg1-socket-path' => $node->host);
}

# Decode $? (from waitpid/system/IPC::Run) into a shell-like exit code.
sub _decode_status
{
	my ($status) = @_;
	return undef unless defined $status;
	return 128 + ($status & 127) if $status & 127;
	return $status >> 8;
}

sub _slurp
{
	my ($path, $offset) = @_;
	open my $fh, '<', $path or return '';
	binmode $fh;
	seek($fh, $offset, SEEK_SET) if $offset;
	local $/;
	my $data = <$fh>;
	close $fh;
	return defined $data ? $data : '';
}

# Log a note into the test's log file (STDOUT is the regress log there).
sub _note
{
	my ($msg) = @_;
	$msg =~ s/\n*\z//;
	print "# $_\n" foreach split /\n/, $msg;
	return;
}

###########################################################################
# Certificates
###########################################################################

# Run openssl; croak with its output if it fails.
sub _openssl
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'openssl', @args ],
		'<', \undef, '>', \$out, '2>', \$err);
	croak "openssl @args failed:\n$out$err" unless $ok;
	return $out;
}

# Minimal config for "openssl req" so that the system's openssl.cnf (its
# default extensions, prompts) does not change what we generate.
sub _req_conf
{
	my ($dir) = @_;
	my $path = "$dir/.pgbr-req.cnf";
	return $path if -f $path;
	_write_file($path, <<'EOF');
[ req ]
distinguished_name = req_dn
prompt = no
string_mask = utf8only

[ req_dn ]
CN = placeholder

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
	return $path;
}

sub _newkey_args
{
	my ($type) = @_;
	$type = 'rsa' unless defined $type;
	return ('-newkey', 'rsa:2048') if $type eq 'rsa';
	return ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256')
	  if $type eq 'ec';
	croak "unknown key_type \"$type\" (use rsa or ec)";
}

sub _mkdir
{
	my ($dir) = @_;
	make_path($dir) unless -d $dir;
	return $dir;
}

sub _write_file
{
	my ($path, $content, $mode) = @_;
	my $tmp = "$path.tmp.$$";
	open my $fh, '>', $tmp or croak "could not create \"$tmp\": $!";
	print $fh $content or croak "could not write \"$tmp\": $!";
	close $fh or croak "could not close \"$tmp\": $!";
	chmod($mode, $tmp) or croak "could not chmod \"$tmp\": $!"
	  if defined $mode;
	# rename: a reader (the server on SIGHUP) never sees half a file
	rename($tmp, $path) or croak "could not rename \"$tmp\" to \"$path\": $!";
	return $path;
}

=pod

=head2 Certificates

=over

=item PgbrTest::make_ca($dir, $name, %opts)

Self-signed CA: C<$dir/$name.crt> and C<$dir/$name.key> (mode 0600), subject
C<CN=$name>, valid from yesterday for C<days> (default 3650) days.
C<key_type> is C<rsa> (RSA 2048, the default) or C<ec> (P-256).  Also
prepares C<$dir/$name.ca.d/> (openssl ca database).  Returns
C<< { crt, key, name, dir, cnf } >>.

=cut

sub make_ca
{
	my ($dir, $name, %opts) = @_;
	croak 'make_ca($dir, $name)' unless defined $dir && defined $name;
	make_path($dir);
	$dir = abs_path($dir);
	my $crt  = "$dir/$name.crt";
	my $key  = "$dir/$name.key";
	my $days = $opts{days} || 3650;

	_openssl(
		'req', '-config', _req_conf($dir), '-x509', '-nodes',
		_newkey_args($opts{key_type}),
		'-keyout', $key, '-out', $crt, '-days', $days,
		'-subj', "/CN=$name", '-extensions', 'v3_ca', '-sha256');
	chmod(0600, $key) or croak "chmod \"$key\": $!";

	# Database for "openssl ca", which (unlike "openssl x509 -req" in
	# OpenSSL 3.0) can set arbitrary notBefore/notAfter dates.
	my $db = "$dir/$name.ca.d";
	make_path($db);
	_write_file("$db/index.txt", '');
	_write_file("$db/index.txt.attr", "unique_subject = no\n");
	_write_file("$db/serial", _openssl('rand', '-hex', '16'));
	my $cnf = "$dir/$name.ca.cnf";
	_write_file($cnf, <<"EOF");
[ ca ]
default_ca = pgbr_ca

[ pgbr_ca ]
dir = $db
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
certificate = $crt
private_key = $key
default_md = sha256
policy = pgbr_policy
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = yes

[ pgbr_policy ]
commonName = supplied
EOF

	return { crt => $crt, key => $key, name => $name, dir => $dir,
		cnf => $cnf };
}

# Time in the format "openssl ca -startdate/-enddate" takes (UTCTime).
sub _asn1_time
{
	my ($epoch) = @_;
	return strftime('%y%m%d%H%M%SZ', gmtime($epoch));
}

=pod

=item PgbrTest::make_cert($dir, $ca, $cn, %opts)

Key and certificate for C<CN=$cn> signed by C<$ca> (a hash from make_ca):
C<$dir/$name.crt> and C<$dir/$name.key> (mode 0600), where C<name> defaults
to C<$cn> (give another C<name> when two certificates share a CN, e.g. the
same CN from another CA).  Options:

  san           => [ 'host', '127.0.0.1', 'DNS:x', 'IP:::1' ]
                   subjectAltName entries; a bare IPv4/IPv6 address becomes
                   IP:, anything else DNS:.  Default [ $cn ], plus
                   'localhost' and 127.0.0.1 when server => 1.  An empty
                   arrayref means no subjectAltName extension at all.
  server        => 1   see san
  days          => 30  validity from now (notBefore is now - 1 hour)
  expired       => 1   notBefore 30 days ago, notAfter 1 day ago
  not_yet_valid => 1   notBefore in 10 days, notAfter in 40 days
  not_before    => EPOCH, not_after => EPOCH   explicit dates
  key_type      => 'rsa' (default, RSA 2048) | 'ec' (P-256)

Certificates carry basicConstraints CA:FALSE and extendedKeyUsage
serverAuth+clientAuth.  Returns C<< { crt, key, cn, name, san, ca } >>.

=cut

sub make_cert
{
	my ($dir, $ca, $cn, %opts) = @_;
	croak 'make_cert($dir, $ca, $cn)'
	  unless defined $dir && ref $ca eq 'HASH' && defined $cn;
	make_path($dir);
	$dir = abs_path($dir);
	my $name = defined $opts{name} ? $opts{name} : $cn;
	my $crt  = "$dir/$name.crt";
	my $key  = "$dir/$name.key";
	my $csr  = "$dir/$name.csr";
	my $ext  = "$dir/$name.ext";

	my @san;
	if (defined $opts{san})
	{
		@san = @{ $opts{san} };
	}
	else
	{
		@san = ($cn);
		push @san, 'localhost', '127.0.0.1' if $opts{server};
	}
	my @san_ext = map {
		/^(DNS|IP|email|URI):/ ? $_
		  : (/^\d+\.\d+\.\d+\.\d+$/ || /^[0-9a-fA-F:]*:[0-9a-fA-F:]*$/)
		  ? "IP:$_"
		  : "DNS:$_"
	} @san;

	my $now = time();
	my ($start, $end);
	if ($opts{expired})
	{
		($start, $end) = ($now - 30 * 86400, $now - 86400);
	}
	elsif ($opts{not_yet_valid})
	{
		($start, $end) = ($now + 10 * 86400, $now + 40 * 86400);
	}
	else
	{
		my $days = defined $opts{days} ? $opts{days} : 30;
		($start, $end) = ($now - 3600, $now + $days * 86400);
	}
	$start = $opts{not_before} if defined $opts{not_before};
	$end   = $opts{not_after}  if defined $opts{not_after};

	my $ext_text = <<'EOF';
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
	$ext_text .= 'subjectAltName = ' . join(', ', @san_ext) . "\n" if @san_ext;
	_write_file($ext, $ext_text);

	_openssl('req', '-config', _req_conf($dir), '-new', '-nodes',
		_newkey_args($opts{key_type}),
		'-keyout', $key, '-out', $csr, '-subj', "/CN=$cn");
	chmod(0600, $key) or croak "chmod \"$key\": $!";

	_openssl(
		'ca', '-batch', '-notext', '-config', $ca->{cnf},
		'-in', $csr, '-out', $crt,
		'-startdate', _asn1_time($start), '-enddate', _asn1_time($end),
		'-extfile', $ext, '-extensions', 'leaf');
	unlink $csr, $ext;

	return { crt => $crt, key => $key, cn => $cn, name => $name,
		san => \@san_ext, ca => $ca->{crt} };
}

=pod

=back

=head2 Configuration files

=over

=item PgbrTest::write_conf($path, \%global, \%sections)

Writes an INI file: C<[global]> with the keys of C<%global>, then one
C<[name]> section per key of C<%sections> (each a hashref of options).  Keys
are written sorted; a value that is an arrayref becomes one C<key=value>
line per element (repeatable options such as C<tls-server-auth>); undef
values are skipped.  The file is replaced atomically.  Returns C<$path>.

=cut

sub _conf_lines
{
	my ($opts) = @_;
	my $text = '';
	foreach my $k (sort keys %$opts)
	{
		my $v = $opts->{$k};
		next unless defined $v;
		foreach my $one (ref $v eq 'ARRAY' ? @$v : ($v))
		{
			next unless defined $one;
			croak "newline in value of option \"$k\"" if $one =~ /\n/;
			$text .= "$k=$one\n";
		}
	}
	return $text;
}

sub write_conf
{
	my ($path, $global, $sections) = @_;
	$global   ||= {};
	$sections ||= {};
	my $text = "[global]\n" . _conf_lines($global);
	foreach my $s (sort keys %$sections)
	{
		$text .= "\n[$s]\n" . _conf_lines($sections->{$s} || {});
	}
	make_path(dirname($path));
	return _write_file($path, $text);
}

sub _file_opt
{
	my ($opts, $obj_key, $field, $file_key) = @_;
	return $opts->{$file_key} if defined $opts->{$file_key};
	my $obj = $opts->{$obj_key};
	return undef unless defined $obj;
	return ref $obj eq 'HASH' ? $obj->{$field} : $obj;
}

=pod

=item PgbrTest::client_conf($path, %opts)

Writes the configuration of a PostgreSQL host (the side that runs C<pgbr>
and the extension) and returns C<$path>.  Options:

  host      => repo1-host (default 'localhost')
  port      => repo1-host-port (required)
  cert      => { crt, key } from make_cert   (or cert_file / key_file)
  ca        => { crt } from make_ca           (or ca_file)
  log_level => log-level-console (default 'info')
  extra     => { more [global] options; undef value = leave out }
               (alias: global)

log-path is set to DIR/log (DIR = the config file's directory), so that a
file log, if log-level-file enables one, never goes to /var/log.
  sections  => { stanza => { options } }

=back

=cut

sub client_conf
{
	my ($path, %opts) = @_;
	croak 'client_conf: port is required' unless defined $opts{port};
	my %g = (
		'repo1-host'           => defined $opts{host} ? $opts{host} : 'localhost',
		'repo1-host-port'      => $opts{port},
		'repo1-host-cert-file' => _file_opt(\%opts, 'cert', 'crt', 'cert_file'),
		'repo1-host-key-file'  => _file_opt(\%opts, 'cert', 'key', 'key_file'),
		'repo1-host-ca-file'   => _file_opt(\%opts, 'ca', 'crt', 'ca_file'),
		'log-level-console'    => $opts{log_level} || 'info',
		# a file log (if log-level-file enables one) stays in the test's dir
		'log-path'             => _mkdir(dirname($path) . '/log'),
	);
	foreach my $extra ($opts{global}, $opts{extra})
	{
		next unless $extra;
		$g{$_} = $extra->{$_} foreach keys %$extra;
	}
	return write_conf($path, \%g, $opts{sections} || {});
}

###########################################################################
# Running programs
###########################################################################

=pod

=head2 Running programs

=over

=item PgbrTest::run_pgbr([\%opts,] @args)

Runs C<pgbr @args> (see pgbr_bin) with stdin empty, and returns
C<($exit_code, $stdout, $stderr)>; in scalar context only the exit code.
C<%opts>: C<timeout> (default 60 s; on timeout the program is killed, the
exit code is undef and stderr ends with a line saying so), C<env> (hashref
of environment variables to set for the run), C<stdin> (string).  The
command and its output are copied to the test's log.

=cut

sub run_pgbr
{
	my $o = (@_ && ref $_[0] eq 'HASH') ? shift : {};
	return run_cmd({ %$o }, pgbr_bin(), @_);
}

=pod

=item PgbrTest::run_cmd([\%opts,] @cmd)

Same as run_pgbr for any command.

=cut

sub run_cmd
{
	my $o       = (@_ && ref $_[0] eq 'HASH') ? shift : {};
	my @cmd     = @_;
	my $timeout = defined $o->{timeout} ? $o->{timeout} : $RUN_TIMEOUT;
	my $stdin   = defined $o->{stdin} ? $o->{stdin} : '';
	my ($out, $err) = ('', '');

	local %ENV = %ENV;
	if ($o->{env})
	{
		foreach my $k (keys %{ $o->{env} })
		{
			if (defined $o->{env}{$k}) { $ENV{$k} = $o->{env}{$k} }
			else                       { delete $ENV{$k} }
		}
	}

	_note('running: ' . join(' ', map { /[\s'"]/ ? "'$_'" : $_ } @cmd));
	my $t0 = time();
	my $h;
	my $code;
	eval {
		$h = IPC::Run::start(\@cmd, '<', \$stdin, '>', \$out, '2>', \$err,
			IPC::Run::timeout($timeout));
		$h->finish;
		$code = _decode_status($h->full_result(0));
		1;
	} or do {
		my $e = $@;
		if ($h)
		{
			eval { $h->kill_kill(grace => 2) };
		}
		$code = undef;
		$err .= ($e =~ /timeout/i)
		  ? "\n[PgbrTest] timed out after ${timeout}s, killed\n"
		  : "\n[PgbrTest] could not run @cmd: $e\n";
	};
	my $elapsed = sprintf('%.2f', time() - $t0);
	_note('exit code: ' . (defined $code ? $code : 'undef (timeout)')
		  . " after ${elapsed}s");
	_note("stdout:\n$out") if $out ne '';
	_note("stderr:\n$err") if $err ne '';
	return wantarray ? ($code, $out, $err) : $code;
}

=pod

=item PgbrTest::tls_probe(%opts)

Tries a TLS handshake with C<openssl s_client> and returns
C<($exit_code, $output)> (stdout and stderr together; exit code undef on
timeout).  stdin is empty, so s_client closes the connection right after
the handshake; exit code 0 means the handshake completed.  Options:

  port      (required), host (default 127.0.0.1)
  servername => SNI name (default: none)
  cert => { crt, key } (or cert_file / key_file), ca => { crt } (or ca_file)
  verify    => 1   add -verify_return_error (fail if the server's
                   certificate does not verify)
  tls1_1    => 1   offer only TLS 1.1 (see below)
  tls1_2    => 1, tls1_3 => 1   offer only that version
  args      => [ more s_client arguments ]
  timeout   => seconds (default 10)

About C<tls1_1> on Debian 12 (OpenSSL 3.0, verified with openssl s_server):
plain C<-tls1_1> does send a TLS 1.1 ClientHello, but if the server accepts
1.1 the client itself aborts ("legacy sigalg disallowed or unsupported",
security level >= 1 forbids the SHA1/MD5 signatures of TLS < 1.2), so a
failure would prove nothing about the server.  We therefore send
C<-cipher DEFAULT@SECLEVEL=0 -tls1_1>: against a server that accepts 1.1 the
handshake then succeeds (exit 0, "Protocol : TLSv1.1"); against one that
requires 1.2+ it fails with the server's alert, "tlsv1 alert protocol
version" (SSL alert number 70) in the output, exit 1.

=back

=cut

sub tls_probe
{
	my (%opts) = @_;
	croak 'tls_probe: port is required' unless defined $opts{port};
	my $host = defined $opts{host} ? $opts{host} : '127.0.0.1';
	my @cmd  = ('openssl', 's_client', '-connect', "$host:$opts{port}");
	push @cmd, '-servername', $opts{servername} if defined $opts{servername};
	my $crt = _file_opt(\%opts, 'cert', 'crt', 'cert_file');
	my $key = _file_opt(\%opts, 'cert', 'key', 'key_file');
	my $ca  = _file_opt(\%opts, 'ca',   'crt', 'ca_file');
	push @cmd, '-cert',   $crt if defined $crt;
	push @cmd, '-key',    $key if defined $key;
	push @cmd, '-CAfile', $ca  if defined $ca;
	push @cmd, '-verify_return_error' if $opts{verify};
	push @cmd, '-cipher', 'DEFAULT@SECLEVEL=0', '-tls1_1' if $opts{tls1_1};
	push @cmd, '-tls1_2' if $opts{tls1_2};
	push @cmd, '-tls1_3' if $opts{tls1_3};
	push @cmd, @{ $opts{args} } if $opts{args};

	my ($code, $out, $err) = run_cmd(
		{ timeout => $opts{timeout} || $PROBE_TIMEOUT, stdin => '' }, @cmd);
	return ($code, $out . $err);
}

###########################################################################
# pgbr-server
###########################################################################

=pod

=head2 pgbr-server

=over

=item PgbrTest::start_server(%opts)

Writes a configuration file and starts C<pgbr-server --config=FILE> in the
background (stdout and stderr appended to one log file under
C<tmp_check/log/>), then waits until its port accepts TCP connections
(C<start_timeout>, default 10 s; if the server exits or the time runs out
the test BAILs OUT with the log).  Options:

  cert      => { crt, key } from make_cert  (or cert_file / key_file)
  ca        => { crt } from make_ca          (or ca_file)
  auth      => 'CN=stanza[,stanza]' or an arrayref of them (tls-server-auth)
  port      => TCP port (default: a free one), address => default 127.0.0.1
  repo_path => repo1-path (default DIR/repo, created mode 0750)
  log_level => log-level-console (default 'info'); log-path is DIR/log
  global    => { more or overriding [global] options; undef value = remove }
  sections  => { stanza => { options } }
  dir       => directory for the config and repository (default tmpdir())
  conf      => path of the config file (default DIR/pgbr-server.conf)
  name      => used in the log file name (default 'pgbr-server')
  no_wait   => 1  return right after starting (for a server expected to
                  refuse to start: then use wait_exit)
  start_timeout => seconds

Returns a PgbrTest::Server object; see its methods below.

=cut

sub start_server
{
	my (%opts) = @_;
	my $dir = $opts{dir} || tmpdir('pgbr_server');
	make_path($dir);
	$dir = abs_path($dir);

	my $port = defined $opts{port} ? $opts{port} : free_port();
	my $repo = defined $opts{repo_path} ? $opts{repo_path} : "$dir/repo";
	make_path($repo, { mode => 0750 }) unless -d $repo;

	my $auth = $opts{auth};
	$auth = [$auth] if defined $auth && ref $auth ne 'ARRAY';

	my %g = (
		'repo1-path'           => $repo,
		'tls-server-address'   => defined $opts{address} ? $opts{address} : '127.0.0.1',
		'tls-server-port'      => $port,
		'tls-server-cert-file' => _file_opt(\%opts, 'cert', 'crt', 'cert_file'),
		'tls-server-key-file'  => _file_opt(\%opts, 'cert', 'key', 'key_file'),
		'tls-server-ca-file'   => _file_opt(\%opts, 'ca', 'crt', 'ca_file'),
		'tls-server-auth'      => $auth,
		'log-level-console'    => $opts{log_level} || 'info',
		'log-path'             => _mkdir("$dir/log"),
	);
	if ($opts{global})
	{
		$g{$_} = $opts{global}{$_} foreach keys %{ $opts{global} };
	}

	my $name = $opts{name} || 'pgbr-server';
	my $self = bless {
		dir           => $dir,
		port          => $port,
		conf          => $opts{conf} || "$dir/pgbr-server.conf",
		logfile       => _log_dir() . '/' . _test_name() . "_${name}_$port.log",
		global        => \%g,
		sections      => { %{ $opts{sections} || {} } },
		start_timeout => $opts{start_timeout} || $START_TIMEOUT,
		pid           => undef,
		exit_code     => undef,
	}, 'PgbrTest::Server';

	$self->_write;
	$self->_spawn;
	$self->wait_ready unless $opts{no_wait};
	return $self;
}

=pod

=back

=cut

END
{
	# Never leave a server behind, whatever happened to the test.
	if ($$ == $owner_pid)
	{
		my $saved = $?;
		foreach my $srv (values %servers)
		{
			next unless $srv->{pid};
			kill 'TERM', $srv->{pid};
		}
		foreach my $srv (values %servers)
		{
			next unless $srv->{pid};
			$srv->wait_exit(5);
			if ($srv->{pid})
			{
				kill 'KILL', $srv->{pid};
				waitpid($srv->{pid}, 0);
			}
		}
		$? = $saved;
	}
}

package PgbrTest::Server;

use strict;
use warnings;

use Carp;
use POSIX qw(WNOHANG);
use Time::HiRes qw(usleep time);

=pod

=head2 PgbrTest::Server methods

=over

=item port, pid, logfile, conf, dir

Accessors.  C<pid> is undef when the server is not running.

=cut

sub port    { return $_[0]{port} }
sub pid     { return $_[0]{pid} }
sub logfile { return $_[0]{logfile} }
sub conf    { return $_[0]{conf} }
sub dir     { return $_[0]{dir} }

=pod

=item global, sections

Copies of the options the config file currently holds.

=cut

sub global   { return { %{ $_[0]{global} } } }
sub sections { return { %{ $_[0]{sections} } } }

sub _write
{
	my ($self) = @_;
	PgbrTest::write_conf($self->{conf}, $self->{global}, $self->{sections});
	return;
}

=pod

=item rewrite_conf(\%global [, \%sections])

Changes the config file: keys of C<%global> replace (undef value: remove)
the current [global] options; C<%sections>, if given, replaces whole
sections (undef value: remove the section).  Does not signal the server:
call C<reload> (or C<restart>) afterwards.

=cut

sub rewrite_conf
{
	my ($self, $global, $sections) = @_;
	foreach my $k (keys %{ $global || {} })
	{
		if (defined $global->{$k}) { $self->{global}{$k} = $global->{$k} }
		else                       { delete $self->{global}{$k} }
	}
	foreach my $s (keys %{ $sections || {} })
	{
		if (defined $sections->{$s}) { $self->{sections}{$s} = $sections->{$s} }
		else                         { delete $self->{sections}{$s} }
	}
	$self->{port} = $self->{global}{'tls-server-port'}
	  if defined $self->{global}{'tls-server-port'};
	$self->_write;
	return;
}

sub _spawn
{
	my ($self) = @_;
	my $bin = PgbrTest::server_bin();
	my @cmd = ($bin, "--config=$self->{conf}");

	open my $log, '>>', $self->{logfile}
	  or croak "could not open \"$self->{logfile}\": $!";
	print $log '### ' . scalar(localtime) . " PgbrTest starting: @cmd\n";
	close $log;
	PgbrTest::_note("starting @cmd (log: $self->{logfile})");

	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		# child: stdin from /dev/null, stdout+stderr appended to the log;
		# it stays in our process group, so a ^C of prove stops it too
		open(STDIN, '<', '/dev/null') or POSIX::_exit(126);
		open(STDOUT, '>>', $self->{logfile}) or POSIX::_exit(126);
		open(STDERR, '>&', \*STDOUT) or POSIX::_exit(126);
		$SIG{PIPE} = 'DEFAULT';
		{ no warnings 'exec'; exec { $cmd[0] } @cmd; }
		print STDERR "PgbrTest: could not exec $cmd[0]: $!\n";
		POSIX::_exit(127);
	}
	$self->{pid}       = $pid;
	$self->{exit_code} = undef;
	$servers{"$self"}  = $self;
	return;
}

=pod

=item wait_ready([$timeout])

Waits until the port accepts a TCP connection (the connection is closed at
once, without a byte sent).  BAILs OUT with the log if the process exits
first or the time runs out.  Called by start_server and restart.

=cut

sub wait_ready
{
	my ($self, $timeout) = @_;
	$timeout = $self->{start_timeout} unless defined $timeout;
	my $deadline = time() + $timeout;
	while (1)
	{
		if (!$self->is_alive)
		{
			$self->_bail('pgbr-server exited with code '
				  . (defined $self->{exit_code} ? $self->{exit_code} : '?')
				  . ' before accepting connections');
		}
		my $sock = IO::Socket::INET->new(
			PeerAddr => '127.0.0.1',
			PeerPort => $self->{port},
			Proto    => 'tcp',
			Timeout  => 1);
		if ($sock)
		{
			close $sock;
			PgbrTest::_note("pgbr-server pid $self->{pid} accepts "
				  . "connections on port $self->{port}");
			return 1;
		}
		last if time() > $deadline;
		usleep(100_000);
	}
	$self->_bail("pgbr-server did not accept connections on port "
		  . "$self->{port} within ${timeout}s");
	return 0;
}

sub _bail
{
	my ($self, $msg) = @_;
	my $log = $self->log_content;
	Test::More::diag("$msg\n--- $self->{logfile} ---\n$log--- end of log ---");
	$self->kill9 if $self->{pid};
	Test::More::BAIL_OUT($msg);
	return;
}

=pod

=item is_alive

True while the process runs (reaps it, and records its exit code, once it
has exited).

=cut

sub is_alive
{
	my ($self) = @_;
	return 0 unless $self->{pid};
	my $r = waitpid($self->{pid}, WNOHANG);
	return 1 if $r == 0;
	$self->{exit_code} = PgbrTest::_decode_status($r == $self->{pid} ? $? : undef);
	$self->{pid} = undef;
	delete $servers{"$self"};
	return 0;
}

=pod

=item wait_exit([$timeout])

Waits up to C<$timeout> seconds (default 30) for the process to exit.
Returns its exit code (128+signal if a signal killed it), or undef if it is
still running.  For a server that is not running any more, returns the exit
code it had.

=cut

sub wait_exit
{
	my ($self, $timeout) = @_;
	$timeout = $PgbrTest::STOP_TIMEOUT unless defined $timeout;
	my $deadline = time() + $timeout;
	while ($self->is_alive)
	{
		return undef if time() > $deadline;
		usleep(50_000);
	}
	return $self->{exit_code};
}

=pod

=item exit_code

Exit code of the last run once it has exited (undef while running).

=cut

sub exit_code { return $_[0]{exit_code} }

=pod

=item reload

Sends SIGHUP.  Returns true if the signal was delivered.

=cut

sub reload
{
	my ($self) = @_;
	return 0 unless $self->is_alive;
	PgbrTest::_note("SIGHUP to pgbr-server pid $self->{pid}");
	return kill('HUP', $self->{pid});
}

=pod

=item stop([$timeout])

Sends SIGTERM and waits (default 30 s) for the exit.  Returns the exit code;
if the server did not exit in time it is killed with SIGKILL and undef is
returned.

=cut

sub stop
{
	my ($self, $timeout) = @_;
	return $self->{exit_code} unless $self->is_alive;
	PgbrTest::_note("SIGTERM to pgbr-server pid $self->{pid}");
	kill('TERM', $self->{pid});
	my $code = $self->wait_exit($timeout);
	return $code if defined $code;
	Test::More::diag("pgbr-server pid $self->{pid} ignored SIGTERM, killing it");
	$self->kill9;
	return undef;
}

=pod

=item kill9

SIGKILL and reap.  Returns the exit code (137).

=cut

sub kill9
{
	my ($self) = @_;
	return $self->{exit_code} unless $self->is_alive;
	kill('KILL', $self->{pid});
	return $self->wait_exit(30);
}

=pod

=item restart(%opts)

Stops the server if it runs (SIGTERM), starts it again with the same
config file and port, waits until it accepts connections (unless
C<< no_wait => 1 >>).  The log file is appended to.

=cut

sub restart
{
	my ($self, %opts) = @_;
	$self->stop if $self->is_alive;
	$self->_spawn;
	$self->wait_ready unless $opts{no_wait};
	return $self;
}

=pod

=item log_size

Current size of the log file in bytes (an offset for the log functions).

=cut

sub log_size
{
	my ($self) = @_;
	return -s $self->{logfile} || 0;
}

=pod

=item log_content([$offset])

The log from C<$offset> (default 0) to its end.

=cut

sub log_content
{
	my ($self, $offset) = @_;
	return PgbrTest::_slurp($self->{logfile}, $offset || 0);
}

# $pattern is a qr// (matched against the whole text) or an arrayref of
# qr// that must all match one line.  Returns the matching text/line.
sub _match
{
	my ($text, $pattern) = @_;
	if (ref $pattern eq 'ARRAY')
	{
		LINE: foreach my $line (split /\n/, $text)
		{
			foreach my $re (@$pattern)
			{
				next LINE unless $line =~ $re;
			}
			return defined $line ? $line : '';
		}
		return undef;
	}
	return $text =~ $pattern ? $& : undef;
}

=pod

=item log_contains($pattern [, $offset])

True if the log (from C<$offset>) matches C<$pattern>: a C<qr//>, or an
arrayref of C<qr//> that must all match the same line.

=cut

sub log_contains
{
	my ($self, $pattern, $offset) = @_;
	return defined _match($self->log_content($offset), $pattern) ? 1 : 0;
}

=pod

=item wait_for_log($pattern [, $offset [, $timeout]])

Polls the log (every 0.1 s, from C<$offset>, default 0) until it matches
C<$pattern> (as for log_contains).  Timeout default 10 s.  Returns the log
size at the time of the match (usable as the next offset), or undef on
timeout -- it does not die, so write C<ok(defined $srv->wait_for_log(...))>.

=back

=cut

sub wait_for_log
{
	my ($self, $pattern, $offset, $timeout) = @_;
	$offset  = 0  unless defined $offset;
	$timeout = 10 unless defined $timeout;
	my $deadline = time() + $timeout;
	while (1)
	{
		my $text = $self->log_content($offset);
		return $offset + length($text) if defined _match($text, $pattern);
		return undef if time() > $deadline;
		usleep(100_000);
	}
}

1;
