# Copyright (c) pgbr contributors
#
# Load: 32 clients push WAL to one pgbr-server at once for a bounded time.
#
# Each client is a simulated archiver: its own certificate (CN pusher-NN),
# authorised by tls-server-auth for its own stanza (sNN) only, which it
# creates with STANZA_CREATE (a fake system identifier, 1 MiB segments to
# keep the run short), then pushes distinct synthetic segments over one
# session: a valid long page header (magic, timeline, page address, system
# identifier, segment size) followed by pseudo-random bytes, so that every
# segment differs at every offset (fuzz/pgbr-rawclient, step wal-synth).
# All 32 start together and push for $DURATION seconds (at most $MAX_EACH
# segments each); at the end each pushes its first segment again, which
# must be accepted (same content) without storing a second copy.
#
# Then: every acknowledged segment is in its stanza's archive exactly once,
# complete and with the checksum the client sent (the whole file is
# hashed again here), nothing else is there (no temporary file, nothing
# unacknowledged), a sample comes back byte-identical through WAL_GET, the
# server log has no warning or error, and the memory of the server stays
# bounded: its processes are sampled during the run (VmHWM/VmRSS of the
# listener and of every session process, and their PSS).  The test prints
# segments/s and the peak RSS (diag).
#
# The pushers all connect from 127.0.0.1, so tls-server-max-per-client is
# raised above its default (32) for this server: with the default, the
# verification clients could be refused while a pusher's session process
# is still being reaped.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA;
use File::Basename qw(dirname);
use File::Find;
use IPC::Open2;
use POSIX ();
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
	# no skip: a load test that silently does not run proves nothing
	fail('fuzz/pgbr-rawclient is built (make fuzz/pgbr-rawclient, or set PGBR_RAWCLIENT)');
	done_testing();
	exit 0;
}
note "raw client: $RAW";

my $PUSHERS  = 32;
my $SEG      = 1024 * 1024;    # the stanzas' segment size
my $DURATION = 20;             # seconds of pushing
my $MAX_EACH = 64;             # segments per pusher at most (disk use: 2 GiB)
my $SAMPLE_GETS = 3;           # segments per stanza read back with WAL_GET

# memory bounds of the server
my $MB            = 1024 * 1024;
my $MAX_LISTENER  = 64 * $MB;
my $MAX_SESSION   = 64 * $MB;
my $MAX_TOTAL     = 512 * $MB;
my $MAX_GROWTH    = 16 * $MB;     # RSS growth of a session during the run

my $SYSID_BASE = 7400000000000000000;

###########################################################################
# Certificates, server
###########################################################################

my $dir     = PgbrTest::tmpdir('load');
my $certdir = PgbrTest::tmpdir('certs');
my $ca      = PgbrTest::make_ca($certdir, 'ca');
my $srv     = PgbrTest::make_cert($certdir, $ca, 'backup-srv', server => 1);

my @ids = map { sprintf('%02d', $_) } 1 .. $PUSHERS;
my %cert;
$cert{$_} = PgbrTest::make_cert($certdir, $ca, "pusher-$_", key_type => 'ec')
  foreach @ids;

my $server = PgbrTest::start_server(
	cert      => $srv,
	ca        => $ca,
	auth      => [ map { "pusher-$_=s$_" } @ids ],
	log_level => 'info',
	global    => { 'tls-server-max-per-client' => $PUSHERS + 16 });
my $repo = $server->dir . '/repo';
note 'pgbr-server pid ' . $server->pid . ' port ' . $server->port . ", repository $repo";

sub raw_cmd
{
	my ($id) = @_;
	return (
		$RAW, '--host=localhost', '--port=' . $server->port,
		"--ca=$ca->{crt}", "--cert=$cert{$id}{crt}", "--key=$cert{$id}{key}",
		'--timeout=60');
}

# WAL segment name of segment number $segno (timeline 1, 1 MiB segments)
sub seg_name
{
	my ($segno) = @_;
	my $per_id = 4294967296 / $SEG;    # segments per 4 GB "log" id
	return sprintf('%08X%08X%08X', 1, int($segno / $per_id), $segno % $per_id);
}

sub sysid { return $SYSID_BASE + $_[0]; }

###########################################################################
# The pushers
###########################################################################

my $go_file = "$dir/go";

# One pusher, in a child process: stanza-create, wait for the start, push
# until the deadline, push the first segment again, write what happened to
# $dir/pusher-NN.out:
#   STANZA <answer line>
#   OK <name> <sha256 sent>
#   FAIL <name> <answer line>
#   REPUSH <name> <answer line>
#   END <seconds since the start, after the last answer>
sub pusher
{
	my ($id) = @_;
	my $result = "$dir/pusher-$id.out";
	open my $res, '>', $result or die "$result: $!";
	$res->autoflush(1);
	open STDERR, '>>', "$dir/pusher-$id.err" or die "stderr: $!";
	local $SIG{ALRM} = sub { die "pusher $id: no answer within 60 s\n" };

	my $sysid = sysid($id);
	my ($out, $in);
	my $pid = open2($out, $in, raw_cmd($id), "hello:s$id:load-pusher",
		"stanza-create:$sysid:150004:$SEG", '-');
	$in->autoflush(1);

	# one request's answer: the SENT line (wal-synth) and the final line
	my $answer = sub {
		my ($step) = @_;
		my ($sha, $last);
		alarm 60;
		while (my $line = <$out>)
		{
			chomp $line;
			if ($line =~ /^SENT \Q$step\E \S+ \d+ bytes sha256=([0-9a-f]{64})/)
			{
				$sha = $1;
				next;
			}
			if ($line =~ /^(OK|ERROR|CLOSED|SKIPPED|UNEXPECTED|CONNECT-FAILED) \Q$step\E\b/
				|| $line =~ /^CONNECT-FAILED/)
			{
				$last = $line;
				last;
			}
		}
		alarm 0;
		return ($sha, defined $last ? $last : 'EOF (the raw client exited)');
	};

	my (undef, $created) = $answer->('stanza-create');
	print $res "STANZA $created\n";
	if ($created !~ /^OK/)
	{
		close $in;
		waitpid($pid, 0);
		return;
	}
	print $res "READY\n";
	# the parent writes the start time into the go file (renamed into place)
	usleep(10_000) until -e $go_file;
	open my $g, '<', $go_file or die "$go_file: $!";
	my $t0 = <$g>;
	close $g;
	chomp $t0;
	my $deadline = $t0 + $DURATION;

	my $segno = 1;
	my $first;
	while (time() < $deadline && $segno <= $MAX_EACH)
	{
		my $name = seg_name($segno++);
		print $in "wal-synth:$name:$sysid:$SEG:$id\n";
		my ($sha, $last) = $answer->('wal-synth');
		if ($last =~ /^OK/ && defined $sha)
		{
			print $res "OK $name $sha\n";
			$first //= $name;
		}
		else
		{
			print $res "FAIL $name $last\n";
			last;
		}
	}
	printf $res "END %.3f\n", time() - $t0;
	if (defined $first)
	{
		print $in "wal-synth:$first:$sysid:$SEG:$id\n";
		my (undef, $last) = $answer->('wal-synth');
		print $res "REPUSH $first $last\n";
	}
	close $in;
	while (<$out>) { }
	waitpid($pid, 0);
	close $res;
	return;
}

my %child;
foreach my $id (@ids)
{
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $ok = eval { pusher($id); 1 };
		if (!$ok && open my $fh, '>>', "$dir/pusher-$id.out")
		{
			print $fh "DIED $@";
			close $fh;
		}
		POSIX::_exit(0);
	}
	$child{$pid} = $id;
}

sub result_lines
{
	my ($id) = @_;
	open my $fh, '<', "$dir/pusher-$id.out" or return ();
	my @l = <$fh>;
	close $fh;
	chomp @l;
	return @l;
}

# all pushers connected and created their stanza
my $ready_deadline = time() + 120;
my @not_ready;
while (1)
{
	@not_ready = grep { !grep { $_ eq 'READY' } result_lines($_) } @ids;
	last unless @not_ready;
	last if time() > $ready_deadline;
	last if grep { /^(STANZA (?!OK)|DIED)/ } map { result_lines($_) } @not_ready;
	usleep(100_000);
}
is(scalar(@not_ready), 0, "all $PUSHERS pushers connected and created their stanza")
  or diag join("\n", map { "pusher-$_: " . join(' | ', result_lines($_)) } @not_ready);

###########################################################################
# The run: start them together, sample the server's memory meanwhile
###########################################################################

# Processes of the server: the listener and its children (sessions).
sub server_children
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or return ();
	foreach my $p (grep { /^\d+$/ } readdir $dh)
	{
		open my $fh, '<', "/proc/$p/stat" or next;
		my $stat = <$fh>;
		close $fh;
		push @kids, $p if defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

# { hwm, rss, pss } in bytes of a process, or undef if it is gone
sub mem_of
{
	my ($pid) = @_;
	my %m;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	while (<$fh>)
	{
		$m{hwm} = $1 * 1024 if /^VmHWM:\s+(\d+) kB/;
		$m{rss} = $1 * 1024 if /^VmRSS:\s+(\d+) kB/;
	}
	close $fh;
	return undef unless defined $m{rss};
	if (open my $sf, '<', "/proc/$pid/smaps_rollup")
	{
		while (<$sf>) { $m{pss} = $1 * 1024 if /^Pss:\s+(\d+) kB/; }
		close $sf;
	}
	$m{pss} //= $m{rss};
	return \%m;
}

my $srv_pid = $server->pid;
my %peak = (listener => 0, session => 0, total_rss => 0, total_pss => 0, sessions => 0);
my %first_rss;    # session pid => RSS once warmed up
my %max_rss;      # session pid => highest RSS seen
my $t_start;

sub sample
{
	my $l = mem_of($srv_pid) or return;
	$peak{listener} = $l->{hwm} if $l->{hwm} > $peak{listener};
	my ($rss, $pss, $n) = ($l->{rss}, $l->{pss}, 0);
	foreach my $p (server_children($srv_pid))
	{
		my $m = mem_of($p) or next;
		$n++;
		$rss += $m->{rss};
		$pss += $m->{pss};
		$peak{session} = $m->{hwm} if $m->{hwm} > $peak{session};
		# the first sample 2 s into the run, after the first segments
		$first_rss{$p} //= $m->{rss} if time() - $t_start > 2;
		$max_rss{$p} = $m->{rss} if !defined $max_rss{$p} || $m->{rss} > $max_rss{$p};
	}
	$peak{total_rss} = $rss if $rss > $peak{total_rss};
	$peak{total_pss} = $pss if $pss > $peak{total_pss};
	$peak{sessions}  = $n   if $n > $peak{sessions};
	return;
}

my $srv_off = $server->log_size;
$t_start = time();
{
	my $tmp = "$go_file.tmp";
	open my $g, '>', $tmp or die "$tmp: $!";
	printf $g "%.6f\n", $t_start;
	close $g;
	rename $tmp, $go_file or die "rename: $!";
}
note "go: $PUSHERS pushers for ${DURATION}s (at most $MAX_EACH segments each)";

my $hard_deadline = $t_start + $DURATION + 120;
while (%child)
{
	sample();
	while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0)
	{
		delete $child{$pid};
	}
	last if time() > $hard_deadline;
	usleep(250_000);
}
if (%child)
{
	fail('the pushers finished in time');
	diag 'still running: pusher-' . join(', pusher-', sort values %child);
	kill 'KILL', keys %child;
	waitpid($_, 0) foreach keys %child;
}

###########################################################################
# What the pushers saw
###########################################################################

my (%sent, @fails, @repush_bad, $total, $end);
$total = 0;
$end   = 0;
foreach my $id (@ids)
{
	foreach my $l (result_lines($id))
	{
		if ($l =~ /^OK (\S+) ([0-9a-f]{64})$/)
		{
			$sent{$id}{$1} = $2;
			$total++;
		}
		elsif ($l =~ /^(FAIL|DIED)/) { push @fails, "pusher-$id: $l"; }
		elsif ($l =~ /^REPUSH (\S+) (.*)$/)
		{
			push @repush_bad, "pusher-$id: $l" unless $2 =~ /^OK/;
		}
		elsif ($l =~ /^END ([\d.]+)$/) { $end = $1 if $1 > $end; }
	}
}
is(scalar(@fails), 0, 'no push failed') or diag join("\n", @fails[ 0 .. ($#fails < 9 ? $#fails : 9) ]);
is(scalar(grep { keys %{ $sent{$_} || {} } } @ids), $PUSHERS, 'every pusher archived segments');
is(scalar(@repush_bad), 0, 'pushing a segment again with the same content is accepted')
  or diag join("\n", @repush_bad[ 0 .. ($#repush_bad < 9 ? $#repush_bad : 9) ]);
cmp_ok($total, '>=', $PUSHERS * 2, "$total segments archived in all");

my $rate = $end > 0 ? $total / $end : 0;
my $mib  = $total * $SEG / $MB;
diag sprintf('load: %d pushers archived %d segments of 1 MiB (%.0f MiB) in %.1f s: '
	  . '%.1f segments/s, %.1f MiB/s', $PUSHERS, $total, $mib, $end, $rate, $end > 0 ? $mib / $end : 0);
diag sprintf('pgbr-server peak memory: listener VmHWM %.1f MB, largest session VmHWM %.1f MB,'
	  . ' all processes RSS %.1f MB (PSS %.1f MB) with %d sessions',
	$peak{listener} / $MB, $peak{session} / $MB, $peak{total_rss} / $MB,
	$peak{total_pss} / $MB, $peak{sessions});

###########################################################################
# The repository: every acknowledged segment exactly once, intact
###########################################################################

my ($missing, $extra, $dups, $bad_name, $bad_size, $bad_sum, $temp, $files) =
  (0, 0, 0, 0, 0, 0, 0, 0);
my @problems;
foreach my $id (@ids)
{
	my %seen;
	my $top = "$repo/s$id/archive";
	my @found;
	find({ wanted => sub { push @found, $File::Find::name if -f $_ }, no_chdir => 1 }, $top)
	  if -d $top;
	foreach my $path (@found)
	{
		$files++;
		my $base = substr($path, length($top) + 1);
		if ($base =~ m{(^|/)\.})
		{
			$temp++;
			push @problems, "s$id: temporary file $base";
			next;
		}
		if ($base !~ m{^([0-9A-F]{16})/(\1[0-9A-F]{8})-([0-9a-f]{64})\.raw$})
		{
			$bad_name++;
			push @problems, "s$id: unexpected file $base";
			next;
		}
		my ($name, $sha) = ($2, $3);
		$seen{$name}++;
		if (!exists $sent{$id}{$name})
		{
			$extra++;
			push @problems, "s$id: $name was not acknowledged";
			next;
		}
		if ($sha ne $sent{$id}{$name})
		{
			$bad_sum++;
			push @problems, "s$id: $name stored as $sha, sent $sent{$id}{$name}";
			next;
		}
		if (-s $path != $SEG)
		{
			$bad_size++;
			push @problems, "s$id: $name has " . (-s $path) . ' bytes';
			next;
		}
		my $got = Digest::SHA->new(256)->addfile($path, 'b')->hexdigest;
		if ($got ne $sha)
		{
			$bad_sum++;
			push @problems, "s$id: content of $name hashes to $got, its name says $sha";
		}
	}
	foreach my $name (keys %{ $sent{$id} || {} })
	{
		if (!$seen{$name})
		{
			$missing++;
			push @problems, "s$id: acknowledged $name is not in the archive";
		}
		elsif ($seen{$name} > 1)
		{
			$dups++;
			push @problems, "s$id: $name is stored $seen{$name} times";
		}
	}
}
note "$files files in the archives of the $PUSHERS stanzas";
is($missing,  0, 'every acknowledged segment is in its stanza\'s archive');
is($dups,     0, 'each exactly once (one file per name, the re-push included)');
is($extra,    0, 'and nothing that was not acknowledged');
is($temp,     0, 'no temporary file is left');
is($bad_name, 0, 'every file is named <wal>-<sha256>.raw');
is($bad_size, 0, 'every segment has its full size');
is($bad_sum,  0, 'every stored file has the checksum the client sent, and its content matches');
diag join("\n", @problems[ 0 .. ($#problems < 19 ? $#problems : 19) ]) if @problems;

###########################################################################
# A sample read back through the protocol (WAL_GET)
###########################################################################

my ($gets, $got_ok) = (0, 0);
foreach my $id (@ids)
{
	my @names = sort keys %{ $sent{$id} || {} };
	next unless @names;
	my %pick = map { $_ => 1 } @names[ 0, int($#names / 2), $#names ];
	my @picked = (sort keys %pick)[ 0 .. ($SAMPLE_GETS < keys %pick ? $SAMPLE_GETS : scalar(keys %pick)) - 1 ];
	my ($rc, $out) = PgbrTest::run_cmd({ timeout => 60 }, raw_cmd($id), "hello:s$id",
		map { "wal-get:$_" } @picked);
	$gets += @picked;
	# the answers come in the order of the requests
	my @streams = $out =~ /^STREAM wal-get (\d+) bytes sha256=([0-9a-f]{64}) END/mg;
	for (my $i = 0; $i < @picked; $i++)
	{
		my ($len, $sha) = @streams[ 2 * $i, 2 * $i + 1 ];
		if (defined $sha && $len == $SEG && $sha eq $sent{$id}{ $picked[$i] })
		{
			$got_ok++;
		}
		else
		{
			diag "s$id: WAL_GET $picked[$i]: " . (defined $sha ? "$len bytes, sha256 $sha" : "no stream\n$out");
		}
	}
}
is($got_ok, $gets, "WAL_GET returns each of the $gets sampled segments byte-identical");

###########################################################################
# Server health: log, memory
###########################################################################

my $log = $server->log_content($srv_off);
my @bad = grep { /\b(WARN|ERROR):/ } split /\n/, $log;
is(scalar(@bad), 0, 'the server log has no warning or error during the run')
  or diag join("\n", @bad[ 0 .. ($#bad < 9 ? $#bad : 9) ]);
ok($server->is_alive, 'pgbr-server still runs');
cmp_ok($peak{sessions}, '>=', $PUSHERS, "$PUSHERS sessions were served at once");

cmp_ok($peak{listener}, '<', $MAX_LISTENER,
	sprintf('listener peak RSS %.1f MB < %d MB', $peak{listener} / $MB, $MAX_LISTENER / $MB));
cmp_ok($peak{session}, '<', $MAX_SESSION,
	sprintf('largest session peak RSS %.1f MB < %d MB', $peak{session} / $MB, $MAX_SESSION / $MB));
cmp_ok($peak{total_rss}, '<', $MAX_TOTAL,
	sprintf('all server processes together %.1f MB RSS < %d MB', $peak{total_rss} / $MB,
		$MAX_TOTAL / $MB));
my $growth = 0;
foreach my $p (keys %first_rss)
{
	my $g = $max_rss{$p} - $first_rss{$p};
	$growth = $g if $g > $growth;
}
cmp_ok(scalar(keys %first_rss), '>', 0, 'session memory was sampled during the run');
cmp_ok($growth, '<', $MAX_GROWTH,
	sprintf('no session grows while it pushes segment after segment (at most +%.1f MB)',
		$growth / $MB));

is($server->stop, 0, 'pgbr-server stops cleanly');

done_testing();
