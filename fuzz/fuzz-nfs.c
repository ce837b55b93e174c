/* fuzz-nfs: libFuzzer target for the NFS server's decoders (proto/rpc, proto/nfs3).
 * Byte 0 picks the decoder: 0 an RPC call, 1..22 the arguments of NFS procedure
 * byte-1, 23 a MOUNT path, 24 a portmapper mapping, 25 a file handle; the rest is the
 * input (tests/test-nfs --seeds writes valid ones).
 * Properties: no crash, no read outside the input; a decoded call's arguments lie
 * inside the record; decoded names are 1..255 bytes without '/' or NUL; WRITE data
 * lies inside the input and is exactly count bytes, at most wsize; a record reader
 * never accepts more than its limit. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/nfs3.h"
#include "proto/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WSIZE 65536

static void name_ok(const char *n)
{
	size_t l = strlen(n);
	if (l == 0 || l > NFS3_NAME_MAX || strchr(n, '/'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static nfs3_args a;
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const uint8_t *in = data + 1;
	size_t len = size - 1;

	if (sel == 0) {
		rpc_call c;
		int r = rpc_call_decode(in, len, &c);
		if (r == RPC_DEC_OK &&
		    (c.args < in || c.args + c.args_len != in + len ||
		     (c.flavor == RPC_AUTH_SYS && (c.sys.ngids > RPC_GIDS_MAX ||
		                                   strlen(c.sys.machine) > RPC_MACHINE_MAX))))
			abort();
		/* The same bytes as a reply to the xid they start with: the results lie
		 * inside the input and end with it. */
		const uint8_t *res;
		size_t rl;
		if (len >= 4 && rpc_reply_decode(in, len, (uint32_t)in[0] << 24 |
		                                  (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 |
		                                  in[3], &res, &rl) == 0 &&
		    (res < in || res + rl != in + len))
			abort();
		/* The same bytes as a stream of fragment headers. */
		rpc_rec rr;
		rpc_rec_init(&rr, 4096);
		for (size_t i = 0; i + 4 <= len; i += 4) {
			uint32_t h = (uint32_t)in[i] << 24 | (uint32_t)in[i + 1] << 16 |
			             (uint32_t)in[i + 2] << 8 | in[i + 3];
			if (rpc_rec_frag(&rr, h) < 0)
				break;
			if (rr.have > rr.max)
				abort();
			rpc_rec_take(&rr, h & ~RPC_LAST_FRAG);
			if (rpc_rec_done(&rr))
				rpc_rec_reset(&rr);
		}
	} else if (sel <= NFS3_NPROCS) {
		int r = nfs3_decode_args(sel - 1u, in, len, WSIZE, &a);
		if (r == 0) {
			switch (a.proc) {
			case NFS3_LOOKUP: case NFS3_REMOVE: case NFS3_RMDIR: case NFS3_CREATE:
			case NFS3_MKDIR: case NFS3_SYMLINK: case NFS3_MKNOD: case NFS3_LINK:
				name_ok(a.where.name);
				break;
			case NFS3_RENAME:
				name_ok(a.where.name);
				name_ok(a.to.name);
				break;
			case NFS3_WRITE:
				if (a.count > WSIZE || (a.count && (a.data < in ||
				                                    a.data + a.count > in + len)))
					abort();
				break;
			}
			if (a.fh.len > NFS3_FHSIZE || a.where.dir.len > NFS3_FHSIZE ||
			    strlen(a.path) > NFS3_PATH_MAX)
				abort();
		}
	} else if (sel == NFS3_NPROCS + 1) {
		char path[MNT_PATH_MAX + 1];
		if (mnt3_decode_path(in, len, path) == 0 && strlen(path) > MNT_PATH_MAX)
			abort();
	} else if (sel == NFS3_NPROCS + 2) {
		pmap_mapping m;
		if (pmap_decode_mapping(in, len, &m) == 0 && len != 16)
			abort();
	} else if (sel == NFS3_NPROCS + 3) {
		static const uint8_t key[NFS3_FH_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
		nfs3_fh fh = {.len = len > NFS3_FHSIZE ? NFS3_FHSIZE : (uint32_t)len};
		nfs3_handle h;
		memcpy(fh.data, in, fh.len);
		if (nfs3_fh_parse(key, &fh, &h) == 0) {
			/* Only a handle made with the key parses: re-making it gives the input. */
			nfs3_fh again;
			nfs3_fh_make(key, &h, &again);
			if (again.len != fh.len || memcmp(again.data, fh.data, fh.len))
				abort();
		}
	}
	return 0;
}
