#!/usr/bin/env python3
"""bench/model.py: the cost model of a bkstor head past this machine.

Reads `name: value` lines printed by `bkstor-bench stages` (CPU nanoseconds per byte
of each stage, measured on this machine, one thread), and computes what a head needs
to ingest and restore at its network's line rate: cores, RAM for the index, disks,
and which stage or resource limits it. With --write it writes bench/MODEL.md; every
figure in that file comes from the bench output it was given plus the head's
parameters below (nothing in it is typed by hand).

    cd build && bench/bkstor-bench stages > ../bench/stages.txt
    python3 ../bench/model.py ../bench/stages.txt --write ../bench/MODEL.md

The head's parameters are options (defaults: 60 disks, 16 cores, 2 x 25GbE). Those
that this machine cannot measure (a disk's streaming rate, its size, how much of a
generation is new) are assumptions, listed as such in the output.
"""
import argparse
import datetime
import sys


def read_figures(paths):
    fig = {}
    for p in paths:
        with (sys.stdin if p == '-' else open(p)) as f:
            for line in f:
                name, sep, val = line.partition(':')
                if not sep:
                    continue
                try:
                    fig[name.strip()] = float(val.split()[0])
                except (ValueError, IndexError):
                    pass
    return fig


NEED = ['stage_ns_per_byte_memcpy', 'stage_ns_per_byte_chunk', 'stage_ns_per_byte_hash',
        'stage_ns_per_byte_digest', 'stage_ns_per_byte_compress', 'stage_compress_ratio',
        'stage_ns_per_byte_decompress', 'stage_ns_per_byte_raid_encode',
        'stage_ns_per_byte_receive', 'stage_ns_per_byte_send', 'stage_ns_per_byte_index',
        'stage_ns_per_chunk_index_hit', 'stage_ns_per_chunk_index_miss',
        'stage_mean_chunk_bytes', 'index_ram_bytes_per_chunk']


def model(f, a):
    """Returns a dict of results; every per-byte figure is per logical byte."""
    cr = f['stage_compress_ratio']
    rate = a.nic_gbps * 1e9 / 8 * a.nic_efficiency          # payload bytes/s
    data_frac = (a.group - 2) / a.group                        # RAID-6 groups
    r = {'rate': rate, 'cr': cr}

    def ingest(new, busy, deferred=False):
        """CPU ns per logical byte and the part of it under appl.mu, by stage.

        daemon/native_ops.c: a plain PUT chunks, fingerprints and compresses outside
        the lock (the new chunks at store.zstd_level_busy while the daemon is behind
        on a mostly new stream: a first backup, `busy`); under the lock only the
        index (a new chunk is looked up twice: once to learn it is new, once by
        store_put_prepared before its insert), the segment append (a copy and the
        item's XXH3) and the map."""
        lvl = 'zstd 1, busy' if busy and 'stage_ns_per_byte_compress_busy' in f else 'zstd 3'
        zns = f['stage_ns_per_byte_compress_busy'] if lvl != 'zstd 3' else \
            f['stage_ns_per_byte_compress']
        zcr = f['stage_compress_ratio_busy'] if lvl != 'zstd 3' else cr
        if deferred:  # store.zstd_level_busy = 0: stored raw, compressed later
            lvl, zns, zcr = 'none: deferred', 0.0, 1.0
        st = {
            'receive': f['stage_ns_per_byte_receive'],
            'digest (XXH3, END check)': f['stage_ns_per_byte_digest'],
            'chunk': f['stage_ns_per_byte_chunk'],
            'hash (SHA-256)': f['stage_ns_per_byte_hash'],
            'index lookup': ((1 - new) * f['stage_ns_per_chunk_index_hit'] +
                             2 * new * f['stage_ns_per_chunk_index_miss']) /
                            f['stage_mean_chunk_bytes'],
            'compress (%s)' % lvl: new * zns,
            'append copy and item XXH3': new / zcr * (f['stage_ns_per_byte_memcpy'] +
                                                       f['stage_ns_per_byte_digest']),
            'RAID encode': new / zcr * f['stage_ns_per_byte_raid_encode'],
        }
        serial = st['index lookup'] + st['append copy and item XXH3']
        return st, serial, zcr

    for name, new, busy, dfr in (('dup', a.new_fraction, False, False),
                                 ('first', 1.0, True, False),
                                 ('first_deferred', 1.0, True, True)):
        st, lock_ns, zcr = ingest(new, busy, dfr)
        total = sum(st.values())
        cores = rate * total * 1e-9
        lock_max = 1e9 / lock_ns                                 # bytes/s through appl.mu
        cpu_max = a.cores * 1e9 / total
        disk_w = rate * new / zcr / data_frac                    # bytes/s to the disks
        disks = disk_w / (a.disk_mbps * 1e6)
        disk_max = a.disks * a.disk_mbps * 1e6 * data_frac * zcr / new
        limits = {'network (line rate)': rate, 'CPU (%d cores)' % a.cores: cpu_max,
                  'appl.mu (one stream at a time in the store)': lock_max,
                  'disks (%d)' % a.disks: disk_max}
        bott = min(limits, key=limits.get)
        r[name] = dict(stages=st, total=total, cores=cores, lock_ns=lock_ns,
                       lock_max=lock_max, cpu_max=cpu_max, disk_w=disk_w, disks=disks,
                       limits=limits, bottleneck=bott, achievable=limits[bott],
                       top_stage=max(st, key=st.get), new=new)

    # The deferred pass (dedup/store_defer.c): per raw byte stored, read and check it
    # (XXH3), compress it at zstd 3, append and encode the compressed bytes.
    p = {
        'read check (XXH3)': f['stage_ns_per_byte_digest'],
        'compress (zstd 3)': f['stage_ns_per_byte_compress'],
        'append copy and item XXH3': (f['stage_ns_per_byte_memcpy'] +
                                      f['stage_ns_per_byte_digest']) / cr,
        'RAID encode': f['stage_ns_per_byte_raid_encode'] / cr,
    }
    ptot = sum(p.values())
    r['defer_pass'] = dict(stages=p, total=ptot, cpu_max=a.cores * 1e9 / ptot)

    # Restore: read rows, check each chunk (XXH3), decompress, send.
    st = {
        'disk read check (XXH3)': f['stage_ns_per_byte_digest'] / cr,
        'decompress': f['stage_ns_per_byte_decompress'],
        'copy to the send buffer': f['stage_ns_per_byte_memcpy'],
        'send': f['stage_ns_per_byte_send'],
    }
    total = sum(st.values())
    disk_r = rate / cr                                            # bytes/s from the disks
    disk_max = a.disks * a.disk_mbps * 1e6 * a.read_efficiency * data_frac * cr
    limits = {'network (line rate)': rate, 'CPU (%d cores)' % a.cores: a.cores * 1e9 / total,
              'disks (%d)' % a.disks: disk_max}
    bott = min(limits, key=limits.get)
    r['restore'] = dict(stages=st, total=total, cores=rate * total * 1e-9, disk_r=disk_r,
                        disks=disk_r / (a.disk_mbps * 1e6 * a.read_efficiency * data_frac),
                        limits=limits, bottleneck=bott, achievable=limits[bott],
                        top_stage=max(st, key=st.get))

    # RAM: the index keeps Bloom filters and sparse directories in RAM per chunk.
    phys = a.disks * a.disk_tb * 1e12 * data_frac                # data bytes on the disks
    chunks = phys * cr / f['stage_mean_chunk_bytes']
    r['index_chunks'] = chunks
    r['index_ram'] = chunks * f['index_ram_bytes_per_chunk']
    r['stream_ram'] = a.streams * a.stream_buf_mb * 2**20
    return r


def gbs(x):
    return '%.2f GB/s' % (x / 1e9)


def stage_table(w, rate, x, disks_line):
    """One direction's stages, disks and limits, and its bottleneck."""
    w('| stage | ns per logical byte | cores at line rate |')
    w('| --- | --- | --- |')
    for k, v in sorted(x['stages'].items(), key=lambda kv: -kv[1]):
        w('| %s | %.3f | %.2f |' % (k, v, rate * v * 1e-9))
    w('| **total** | **%.3f** | **%.2f** |' % (x['total'], x['cores']))
    w('')
    w(disks_line)
    w('')
    w('| limit | rate it allows |')
    w('| --- | --- |')
    for k, v in sorted(x['limits'].items(), key=lambda kv: kv[1]):
        w('| %s | %s |' % (k, gbs(v)))
    w('')
    w('**Bottleneck: %s (%s).** The costliest stage is %s.'
      % (x['bottleneck'], gbs(x['achievable']), x['top_stage']))
    w('')


def render(f, a, r, src):
    L = []
    w = L.append
    w('# bkstor cost model: a %d-disk, %d-core, %s head' % (a.disks, a.cores, a.nic_name))
    w('')
    w('Written by `bench/model.py` from `bkstor-bench stages` output (%s) on %s. Do not'
      % (src, datetime.date.today().isoformat()))
    w('edit the figures: rerun the bench and the model (commands at the end).')
    w('')
    w('## Measured here: CPU per byte, one thread')
    w('')
    w('| stage | ns per byte | GB/s per core |')
    w('| --- | --- | --- |')
    for k in NEED + [k for k in ('stage_ns_per_byte_compress_busy',) if k in f]:
        if k.startswith('stage_ns_per_byte_'):
            v = f[k]
            w('| %s | %.3f | %.2f |' % (k[len('stage_ns_per_byte_'):], v, 1 / v if v else 0))
    w('')
    w('Also: mean chunk %.0f bytes, zstd level 3 compression ratio %.2f on real files%s,'
      % (f['stage_mean_chunk_bytes'], f['stage_compress_ratio'],
         ' (level 1, compress_busy: %.2f)' % f['stage_compress_ratio_busy']
         if 'stage_compress_ratio_busy' in f else ''))
    w('index RAM %.2f bytes per stored chunk; an index hit costs %.0f ns, a miss %.0f ns'
      % (f['index_ram_bytes_per_chunk'], f.get('stage_ns_per_chunk_index_hit', 0),
         f.get('stage_ns_per_chunk_index_miss', 0)))
    w('(per chunk, a store of random chunks whose index is in RAM). Per byte of the stage\'s')
    w('input: compress and decompress per raw byte, RAID encode per data byte.')
    w('')
    w('## The head (parameters)')
    w('')
    w('| parameter | value | source |')
    w('| --- | --- | --- |')
    w('| disks | %d, RAID-6 groups of %d (%d+2) | given |' % (a.disks, a.group, a.group - 2))
    w('| cores | %d | given |' % a.cores)
    w('| network | %s = %.1f Gb/s, %.0f%% payload = %s | given |'
      % (a.nic_name, a.nic_gbps, a.nic_efficiency * 100, gbs(r['rate'])))
    w('| disk streaming rate | %.0f MB/s | assumption (nearline HDD) |' % a.disk_mbps)
    w('| disk size | %.0f TB | assumption |' % a.disk_tb)
    w('| restore read efficiency | %.0f%% of streaming | assumption (dedup scatters a '
      'generation\'s chunks over older rows) |' % (a.read_efficiency * 100))
    w('| new data in a later generation | %.0f%% | assumption (bench/ingest.sh: 2%% '
      'change per generation) |' % (a.new_fraction * 100))
    w('| concurrent streams | %d, %d MiB of buffers each | assumption |'
      % (a.streams, a.stream_buf_mb))
    w('')
    for name, title in (('dup', 'Ingest of a later generation (%.0f%% new)' % (a.new_fraction * 100)),
                        ('first', 'Ingest of a first backup (all new)'),
                        ('first_deferred', 'Ingest of a first backup, compression deferred '
                         '(`store.zstd_level_busy = 0`)')):
        x = r[name]
        w('## %s at line rate (%s)' % (title, gbs(r['rate'])))
        w('')
        stage_table(w, r['rate'], x,
                    'Disks written: %s after compression and parity, %.1f disks\' worth of streaming.'
                    % (gbs(x['disk_w']), x['disks']))
        if name == 'first_deferred':
            d = r['defer_pass']
            w('The background pass then compresses what was stored raw: %s ns per raw byte'
              % ' + '.join('%.3f %s' % (v, k) for k, v in d['stages'].items()))
            w('= %.3f, so %d cores compress %s while no client writes: a first backup taken'
              % (d['total'], a.cores, gbs(d['cpu_max'])))
            w('at line rate needs %.1f times its own duration of idle time afterwards, and'
              % (r['rate'] / d['cpu_max']))
            w('rows for its raw size meanwhile (%.2f times what it takes compressed).' % r['cr'])
            w('')
    x = r['restore']
    w('## Restore at line rate (%s)' % gbs(r['rate']))
    w('')
    stage_table(w, r['rate'], x, 'Disks read: %s (compressed), %.1f disks at the read efficiency above.'
                % (gbs(x['disk_r']), x['disks']))
    w('## RAM')
    w('')
    w('%d disks of %.0f TB hold %.0f TB of data after parity; at compression %.2f and a'
      % (a.disks, a.disk_tb, a.disks * a.disk_tb * (a.group - 2) / a.group, r['cr']))
    w('mean chunk of %.0f bytes that is %.2e unique chunks, and the index keeps %.2f bytes'
      % (f['stage_mean_chunk_bytes'], r['index_chunks'], f['index_ram_bytes_per_chunk']))
    w('of RAM per chunk: **%.1f GiB for the index** (its entries themselves are on the disks),'
      % (r['index_ram'] / 2**30))
    w('plus %.0f MiB of stream buffers for %d streams.' % (r['stream_ram'] / 2**20, a.streams))
    w('')
    w('## What the model leaves out')
    w('')
    w('- Index lookups that miss the locality cache in a large store read index blocks')
    w('  and segment tables from the disks (outside appl.mu since the prefetch: the put')
    w('  reads them before its locked pass); the figure above is the in-RAM case (a later')
    w('  generation whose chunks come in the order they were stored), and the disks\'')
    w('  random reads for a cold index are not counted.')
    w('- Metadata (content maps, namespace) and commits; row writes are assumed')
    w('  streaming. Receive and send are loopback TCP: a NIC without offloads costs more.')
    w('- Memory bandwidth: at line rate each logical byte crosses memory a few times')
    w('  (receive, chunk, hash, compress), well within a server\'s, but not measured here.')
    w('')
    w('## Commands')
    w('')
    w('    cd build && bench/bkstor-bench stages > ../bench/stages.txt')
    w('    python3 ../bench/model.py ../bench/stages.txt --write ../bench/MODEL.md')
    w('')
    w('bench/stages.txt is the output this file was written from.')
    w('')
    w('Options: %s' % ' '.join('--%s %s' % (k.replace('_', '-'), v)
                              for k, v in sorted(vars(a).items())
                              if k not in ('figures', 'write', 'nic_name')))
    w('')
    return '\n'.join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('figures', nargs='+', help='files of name: value lines (- for stdin)')
    ap.add_argument('--disks', type=int, default=60)
    ap.add_argument('--group', type=int, default=10, help='disks per RAID-6 group')
    ap.add_argument('--cores', type=int, default=16)
    ap.add_argument('--nic-gbps', type=float, default=50.0, help='2 x 25GbE')
    ap.add_argument('--nic-efficiency', type=float, default=0.94,
                    help='TCP payload / line rate')
    ap.add_argument('--disk-mbps', type=float, default=200.0)
    ap.add_argument('--disk-tb', type=float, default=20.0)
    ap.add_argument('--read-efficiency', type=float, default=0.5)
    ap.add_argument('--new-fraction', type=float, default=0.02)
    ap.add_argument('--streams', type=int, default=12)
    ap.add_argument('--stream-buf-mb', type=int, default=2)
    ap.add_argument('--write', help='write the Markdown report here')
    a = ap.parse_args()
    a.nic_name = '2x25GbE' if a.nic_gbps == 50 else '%.0f Gb/s' % a.nic_gbps
    f = read_figures(a.figures)
    missing = [k for k in NEED if k not in f]
    if missing:
        sys.exit('model.py: missing figures: %s (run bkstor-bench stages)' % ', '.join(missing))
    r = model(f, a)
    for name in ('dup', 'first', 'first_deferred', 'restore'):
        x = r[name]
        print('model_%s_ns_per_byte: %.3f' % (name, x['total']))
        print('model_%s_cores_at_line_rate: %.2f' % (name, x['cores']))
        print('model_%s_achievable_gbps: %.3f' % (name, x['achievable'] / 1e9))
        print('model_%s_bottleneck: %s' % (name, x['bottleneck']))
    print('model_defer_pass_ns_per_byte: %.3f' % r['defer_pass']['total'])
    print('model_defer_pass_gbps: %.3f' % (r['defer_pass']['cpu_max'] / 1e9))
    print('model_index_ram_gib: %.2f' % (r['index_ram'] / 2**30))
    if a.write:
        with open(a.write, 'w') as out:
            out.write(render(f, a, r, ', '.join(a.figures)))


if __name__ == '__main__':
    main()
