/* raid/raid.h: the RAID-6 P+Q codec and row geometry. Pure: no I/O, no threads.
 *
 * Math: GF(2^8) with polynomial 0x11d and generator 2, the same as Linux md:
 *   P = D0 ^ D1 ^ ... ^ Dk-1
 *   Q = g^0*D0 ^ g^1*D1 ^ ... ^ g^(k-1)*Dk-1
 * so a row written by bkstor can be checked against md's raid6 code or any other
 * independent implementation. Encoding uses ISA-L's pq_gen; recovery inverts the
 * surviving rows of the (k+2) x k generator matrix (gf_gen_rs_matrix, MDS for 2 parity
 * rows) with gf_invert_matrix + ec_init_tables + ec_encode_data, except that one lost
 * data strip is solved from P alone with ISA-L's xor_gen (the same equation).
 *
 * Strip buffers: 64-byte aligned, length a multiple of 64 (ISA-L's AVX-512 kernels).
 * A "row" is passed as an array of k+2 strip pointers: data strips 0..k-1, then P at
 * index k and Q at index k+1.
 */
#ifndef BKS_RAID_H
#define BKS_RAID_H

#include <stddef.h>
#include <stdint.h>

#define RAID_MIN_K 2
#define RAID_MAX_K 30
#define RAID_ALIGN 64

typedef struct raid_codec raid_codec;

/* A codec for rows of k data strips of at most max_len bytes each. It owns scratch
 * buffers, so one codec must be used by one thread at a time; encoding is stateless
 * and may share. Returns 0 or -EINVAL (k out of range, max_len not a multiple of 64)
 * or -ENOMEM. */
int raid_codec_new(int k, size_t max_len, raid_codec **out);
void raid_codec_free(raid_codec *c); /* accepts NULL */
int raid_codec_k(const raid_codec *c);

/* Compute P (strips[k]) and Q (strips[k+1]) from strips[0..k-1]. len: multiple of 64,
 * at most max_len. */
void raid_encode(const raid_codec *c, size_t len, uint8_t *const *strips);

/* Rebuild the nlost (0, 1 or 2) strips whose indices (0..k+1, distinct) are in lost[],
 * in place, from the other strips of the row. The content of the lost buffers on entry
 * is ignored. Returns 0, or -EINVAL for a bad index list. */
int raid_recover(raid_codec *c, size_t len, uint8_t *const *strips, const int *lost,
                 int nlost);

enum raid_check_result {
	RAID_CHECK_OK = 0,           /* P and Q agree with the data */
	RAID_CHECK_ONE_BAD = 1,      /* exactly one strip is wrong: *bad names it */
	RAID_CHECK_UNLOCATABLE = 2,  /* inconsistent, and no single strip explains it */
};

/* Check a whole row. With RAID_CHECK_ONE_BAD, *bad is the index (0..k+1) of the
 * strip that, if recovered with raid_recover, makes the row consistent again (the
 * mdadm raid6check rule: per byte Px = P^P', Qx = Q^Q'; Px!=0,Qx==0 -> P; Px==0,
 * Qx!=0 -> Q; both -> data z = (log Qx - log Px) mod 255; every differing byte must
 * name the same strip). Uses the codec's scratch. */
enum raid_check_result raid_check(raid_codec *c, size_t len, uint8_t *const *strips,
                                  int *bad);

/* A rebuild's row: recover the one lost strip (index lost, 0..k+1; its content on
 * entry is ignored) in place from the other k+1, then check the rebuilt row.
 * RAID_CHECK_OK means P and Q both agree with the data afterwards, which is what
 * raid_check would say of the rebuilt row; anything else is returned as
 * RAID_CHECK_UNLOCATABLE without locating (call raid_check for that: the lost
 * strip holds the same bytes raid_recover would have put there). Cheaper than
 * raid_recover + raid_check: a lost data strip is the XOR of P and the other data
 * strips, and one P/Q computation both yields a lost parity and checks the other.
 * len: multiple of 64, at most max_len. Uses the codec's scratch. */
enum raid_check_result raid_recover1_check(raid_codec *c, size_t len,
                                           uint8_t *const *strips, int lost);

/* Row geometry: N disks, left-symmetric rotation (md's ALGORITHM_LEFT_SYMMETRIC for
 * raid6): P on disk N-1-(row mod N), Q on the next disk, data strip i on the disk
 * 2+i after P (mod N). Strip s (0..k+1, k = P, k+1 = Q) of row r lives on
 * raid_strip_disk(n, r, s) at byte offset data_offset + r * strip_size of that disk. */
int raid_strip_disk(int ndisks, uint64_t row, int strip);
/* The inverse: which strip of row r does disk d hold (0..k+1). */
int raid_disk_strip(int ndisks, uint64_t row, int disk);

#endif /* BKS_RAID_H */
