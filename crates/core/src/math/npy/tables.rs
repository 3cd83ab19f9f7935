//! The constants of numpy's tanh (`TANH_LUT`) and of SVML's exp, as bit patterns.

/// `npy_tanh`'s table: per interval `[b, c0, c1, …, c16]` (numpy's `lut18x16`).
#[rustfmt::skip]
pub(super) const TANH_LUT: [[u64; 18]; 16] = [
    [
        0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x3ff0_0000_0000_0000, 0xbbf0_b3ea_3fdf_aa19, 0xbfd5_5555_5555_5555, 0xbce6_863e_e44e_d636,
        0x3fc1_1111_1111_2ab5, 0xbda1_ea19_dddd_b3b4, 0xbfab_a1ba_1990_520b, 0xbe35_1ca7_f096_011f, 0x3f96_64f9_4e6a_c14e, 0xbea8_c4c1_fd78_52fe,
        0xbf82_2404_577a_a9dd, 0xbefd_d99a_221e_d573, 0x3f6e_3be6_8942_3841, 0xbf2a_1306_713a_4f3a, 0xbf55_d7e7_6dc5_6871, 0x3f35_e67a_b76a_26e7,
    ],
    [
        0x3fcc_0000_0000_0000, 0x3fcb_8fd0_416a_7c92, 0x3fee_842c_a3f0_8532, 0xbfca_48aa_eb53_bc21, 0xbfd1_83af_c292_ba11, 0x3fc0_4dcd_0476_c75e,
        0x3fb5_c19e_fdfc_08ad, 0xbfb0_b8df_995c_e4df, 0xbf96_e37b_ba52_f6fc, 0x3f9e_aaf3_320c_3851, 0xbf94_d334_3bae_39dd, 0xbfcc_ce16_b104_6f13,
        0x403d_8b07_f7a8_2aa3, 0x4070_593a_3735_bab4, 0xc0d2_6351_1f5b_aac1, 0xc104_5e50_9116_b066, 0x4152_8c38_809c_90c7, 0x4184_8ee0_627d_8206,
    ],
    [
        0x3fd4_0000_0000_0000, 0x3fd3_5f98_a0ea_650e, 0x3fed_1157_4af5_8f1b, 0xbfd1_9921_f432_9916, 0xbfcc_1a4b_039c_9bfa, 0x3fc4_3d34_49a8_0f08,
        0x3fa7_4c98_dc34_fbac, 0xbfb2_955c_f41e_8164, 0x3ecf_f7df_1845_5399, 0x3f9c_f823_fe76_1fc1, 0xbf7b_c748_e60d_f843, 0xbf81_a16f_224b_b7b6,
        0xbf9f_44ab_92fb_ab0a, 0xbfcc_ab65_4e44_835e, 0x4016_9f73_b15e_be5c, 0x4041_fab9_2509_84ce, 0xc076_d57f_b519_0b02, 0xc0a2_16d6_18b4_89ec,
    ],
    [
        0x3fdc_0000_0000_0000, 0x3fda_5729_ee48_8037, 0x3fea_945b_9c24_e4f9, 0xbfd5_e0f0_9bef_8011, 0xbfc1_6e1e_6d8d_0be6, 0x3fc5_c26f_3699_b7e7,
        0xbf79_0d6a_8eff_0a77, 0xbfaf_9d05_c309_f7c6, 0x3f97_3628_34d3_3a4e, 0x3f90_2227_1754_ff1f, 0xbf8c_8937_2b43_ba85, 0xbf62_cbf0_0406_bc09,
        0x3fb2_eac6_0447_3d6a, 0x3fd1_3ed8_0037_dbac, 0xc025_c1dd_41cd_6cb5, 0xc045_8d09_0ec3_de95, 0x4085_f09f_888f_8ada, 0x40a5_b891_07c8_af4f,
    ],
    [
        0x3fe4_0000_0000_0000, 0x3fe1_bf47_eabb_8f95, 0x3fe6_284c_3374_f815, 0xbfd8_93b5_9c35_c882, 0xbf92_426c_751e_48a2, 0x3fc1_a686_f6ab_2533,
        0xbfac_3c02_1789_a786, 0xbf98_7d27_ccff_4291, 0x3f9e_7f83_8018_4b45, 0xbf73_1fe7_7c9c_60af, 0xbf81_29a0_92de_747a, 0x3f75_b29b_b02c_f69b,
        0x3f45_f87d_903a_aac8, 0xbf60_45b9_076c_c487, 0xbf58_fd89_fe05_e0d1, 0xbf74_949d_6011_3d63, 0x3fa2_4633_2a2f_cba5, 0x3fb6_9d83_7452_0eda,
    ],
    [
        0x3fec_0000_0000_0000, 0x3fe6_8665_0b8c_2015, 0x3fe0_2500_a09f_8d6e, 0xbfd6_ba7c_b757_6538, 0x3fb4_f152_b2ba_d124, 0x3faf_203c_316c_e730,
        0xbfae_2196_b732_6859, 0x3f8b_2ca6_2572_b098, 0x3f86_9543_e7c4_20d4, 0xbf84_a604_6865_ec7d, 0x3f60_c85b_4d53_8746, 0x3f60_7df0_f9f9_0c17,
        0xbf5e_1046_7103_6300, 0x3f20_85ee_7e8a_c170, 0x3f73_f7af_01d5_af7a, 0x3f7c_9fd6_200d_0ade, 0xbfb2_9d85_1a89_6fcd, 0xbfbd_ed51_9f98_1716,
    ],
    [
        0x3ff4_0000_0000_0000, 0x3feb_2523_bb6b_2dee, 0x3fd1_f251_31e3_a8c0, 0xbfce_7291_743d_7555, 0x3fbb_ba40_cbef_72be, 0xbf89_c7a0_2788_557c,
        0xbf93_a7a0_11ff_8c2a, 0x3f8f_1cf6_c7f5_b00a, 0xbf73_26bd_4914_222a, 0xbf4c_a3f1_f2b9_192b, 0x3f5b_e939_2199_ec18, 0xbf4b_852a_6e07_58d5,
        0x3f19_bc98_ddf0_f340, 0x3f23_5246_2261_0430, 0xbf1e_40bd_ead1_7e6b, 0x3f02_cd40_e0ad_0a9f, 0x3ed9_065a_e369_b212, 0xbef0_2d28_8b5b_3371,
    ],
    [
        0x3ffc_0000_0000_0000, 0x3fee_1fbf_97e3_3527, 0x3fbd_22ca_1c24_a139, 0xbfbb_6d85_a01e_fb80, 0x3fb0_1ba0_38be_6a3d, 0xbf98_157e_26e0_d541,
        0x3f6e_4709_c7e8_430e, 0x3f60_3798_11e4_3dd5, 0xbf5f_c15b_0a9d_98fa, 0x3f4c_77de_e0af_d227, 0xbf2a_0c68_a448_9f10, 0xbf00_78c6_3d1b_8445,
        0x3f0d_4304_bc92_46e8, 0xbeff_12a6_6269_11b4, 0x3ee2_24cd_6c45_13e5, 0xbe85_8ab8_e019_f311, 0xbeb8_e1ba_4c98_a030, 0x3eb2_9098_1209_c1a6,
    ],
    [
        0x4004_0000_0000_0000, 0x3fef_9258_260a_71c2, 0x3f9b_3afe_1fba_5c76, 0xbf9a_ddae_58c7_141a, 0x3f91_6df4_4871_efc8, 0xbf80_7b55_c1c7_d278,
        0x3f67_682a_fa61_1151, 0xbf47_9382_6f78_537e, 0x3f14_cffc_fa69_fbb6, 0x3f04_055b_ce68_597a, 0xbf00_4626_01dc_2faa, 0x3eec_12ea_dd55_be7a,
        0xbed1_3c41_5f7b_9d41, 0x3eab_9008_bca4_08af, 0xbe24_b645_e68e_eaa3, 0xbe79_2fa6_323b_7cf8, 0x3e6f_fd07_66ad_4016, 0xbe56_7e92_4bf5_ff6e,
    ],
    [
        0x400c_0000_0000_0000, 0x3fef_f112_c63a_9077, 0x3f6d_d37d_19b2_2b21, 0xbf6d_c593_76c7_aa19, 0x3f63_c686_9dfc_8870, 0xbf53_a18d_5843_190f,
        0x3f3e_f2ee_7771_7cbf, 0xbf24_0569_5e36_240f, 0x3f05_7e48_e5b7_9d10, 0xbee2_bf0c_b4a7_1647, 0x3eb7_b6a2_19de_a9f4, 0xbe6f_a600_f593_181b,
        0xbe72_2b8d_9720_cdb0, 0x3e63_4df7_1865_f620, 0xbe4a_bfeb_fb72_bc83, 0x3e2d_f04d_6787_6402, 0xbe0c_63c2_9f50_5f5b, 0x3de3_f7f7_de6b_0eb6,
    ],
    [
        0x4014_0000_0000_0000, 0x3fef_ff41_9668_df11, 0x3f27_ccec_13a9_ef96, 0xbf27_cc5e_7467_7410, 0x3f1f_b9ae_f915_d828, 0xbf0f_b6bb_c89b_1a5b,
        0x3ef9_5a44_82f1_80b7, 0xbee0_e08d_e39c_e756, 0x3ec3_3b66_d7d7_7264, 0xbea3_1eaa_fe73_efd5, 0x3e80_cbcc_8d4c_5c8a, 0xbe5a_3c93_5dce_3f7d,
        0x3e32_2666_d739_bec0, 0xbe05_bb1b_cf83_ca73, 0x3dd5_1c38_f869_5ed3, 0xbd95_c72b_e95e_4d2c, 0xbd7f_ab21_6b9e_0e49, 0x3d69_ed18_bae3_ebbc,
    ],
    [
        0x401c_0000_0000_0000, 0x3fef_fffc_8327_50f2, 0x3ecb_e6c3_f332_50ae, 0xbecb_e6c0_e8b4_cc87, 0x3ec2_99d1_e27c_6e11, 0xbeb2_99c9_c684_a963,
        0x3e9d_c2c2_7da3_b603, 0xbe83_d709_ba5f_714e, 0x3e66_ac4e_578b_9b10, 0xbe46_abb0_2c43_68ed, 0x3e24_25bb_231a_5e29, 0xbe00_1c6d_95e3_ae96,
        0x3dd7_6a55_3d7e_7918, 0xbdaf_2ac1_43fb_6762, 0x3d83_13ac_38c6_832b, 0xbd55_a89c_3020_3106, 0x3d28_26b6_2056_aa27, 0xbcf7_534c_4f3d_fa71,
    ],
    [
        0x4024_0000_0000_0000, 0x3fef_ffff_fdc9_6f35, 0x3e41_b486_5394_f75f, 0xbe41_b486_526b_0565, 0x3e37_9b5d_dcca_334c, 0xbe27_9b5d_d4fb_3d01,
        0x3e12_e2af_d9f7_433e, 0xbdf9_2e3f_c5ee_63e0, 0x3ddc_c74b_8d3d_5c42, 0xbdbc_c749_ca80_79dd, 0x3d99_92a4_beac_8662, 0xbd74_755a_00ea_1fd3,
        0x3d4d_e0fa_5941_6a39, 0xbd23_eae5_2a3d_bf57, 0x3cf7_7879_3562_6685, 0xbcca_d6b3_bb9e_ff65, 0x3ca3_13e3_1762_f523, 0xbc73_0b73_f1ea_ff20,
    ],
    [
        0x402c_0000_0000_0000, 0x3fef_ffff_ffff_cf58, 0x3d88_53f0_1bda_5f28, 0xbd88_53f0_1bef_63a4, 0x3d80_37f5_7bc6_2c9a, 0xbd70_37f5_7ae7_2aa6,
        0x3d59_f320_3486_79ba, 0xbd41_4cc0_30f2_110e, 0x3d23_c589_137f_92b4, 0xbd03_c588_3836_b9d2, 0x3ce1_91ba_5ed3_fb67, 0xbcbc_1c6c_063b_b7ac,
        0x3c94_8716_cf36_81b4, 0xbc6b_5e3e_9ca0_955e, 0x3c40_1ffc_49c6_bc29, 0xbc12_705c_cd3d_d884, 0x3bea_37aa_2189_5319, 0xbbba_2cff_8135_d462,
    ],
    [
        0x4034_0000_0000_0000, 0x3ff0_0000_0000_0000, 0x3c73_953c_0197_ef58, 0xbc73_955b_e519_be31, 0x3c6a_2d4b_50a2_cff7, 0xbc5a_2ca2_bba7_8e86,
        0x3c44_b61d_9bbc_c940, 0xbc2b_a022_e8d8_2a87, 0x3c10_7f8e_2c87_07a1, 0xbbf0_7a54_1626_4aec, 0x3bc8_9245_0bad_44c4, 0xbba3_be9a_4460_fe00,
        0x3b87_3f9f_2d2f_da99, 0xbb5e_ca68_e2c1_ba2e, 0xbabf_0b21_acfa_52ab, 0xba8e_0a4c_47ae_75f5, 0x3ae5_c7f1_fd87_1496, 0xbab5_a71b_5f7d_9035,
    ],
    [
        0x0000_0000_0000_0000, 0x3ff0_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000,
        0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000,
        0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000,
    ],
];

/// `TANH_LUT` transposed: `TANH_COEF[k]` holds coefficient `k` (`b, c0, …, c16`) of the
/// 16 intervals, so one AVX-512 two-table permute or one AVX2 gather per
/// coefficient looks it up for every lane.
#[cfg(target_arch = "x86_64")]
pub(super) static TANH_COEF: [[u64; 16]; 18] = {
    let mut out = [[0u64; 16]; 18];
    let mut i = 0;
    while i < 16 {
        let mut k = 0;
        while k < 18 {
            out[k][i] = TANH_LUT[i][k];
            k += 1;
        }
        i += 1;
    }
    out
};

// `npy_exp`'s constants (SVML's `__svml_dexp_ha_data_internal_avx512`), as IEEE bits.
pub(super) const EXP_TH: [u64; 16] = [
    0x3ff0_0000_0000_0000,
    0x3ff0_b558_6cf9_890f,
    0x3ff1_72b8_3c7d_517b,
    0x3ff2_387a_6e75_6238,
    0x3ff3_06fe_0a31_b715,
    0x3ff3_dea6_4c12_3422,
    0x3ff4_bfda_d536_2a27,
    0x3ff5_ab07_dd48_5429,
    0x3ff6_a09e_667f_3bcd,
    0x3ff7_a114_73eb_0187,
    0x3ff8_ace5_422a_a0db,
    0x3ff9_c491_82a3_f090,
    0x3ffa_e89f_995a_d3ad,
    0x3ffc_199b_dd85_529c,
    0x3ffd_5818_dcfb_a487,
    0x3ffe_a4af_a2a4_90da,
];
pub(super) const EXP_TLR: [u64; 16] = [
    0x0000_0000_0000_0000,
    0x3c97_9aa6_5d83_7b6d,
    0xbc80_1b15_eaa5_9348,
    0x3c96_8efd_e3a8_a894,
    0x3c83_4d75_4db0_abb6,
    0x3c85_9f48_a72a_4c6d,
    0x3c76_90ce_bb7a_afb0,
    0x3c90_63e1_e21c_5409,
    0xbc93_b3ef_bf5e_2228,
    0xbc7b_32dc_b94d_a51d,
    0x3c8d_b72f_c1f0_eab4,
    0x3c71_affc_2b91_ce27,
    0x3c8c_1a77_92cb_3387,
    0x3c73_6eae_30af_0cb3,
    0x3c74_a385_a63d_07a7,
    0xbc8f_f712_8fd3_91f0,
];
pub(super) const EXP_L2E: u64 = 0x3ff7_1547_652b_82fe;
pub(super) const EXP_LN2HI: u64 = 0x3fe6_2e42_fefa_39ef;
pub(super) const EXP_LN2LO: u64 = 0x3c7a_bc9e_3b39_803f;
pub(super) const EXP_C6: u64 = 0x3f57_4118_3694_0c04;
pub(super) const EXP_C5: u64 = 0x3f81_101c_bbc2_65c0;
pub(super) const EXP_C4: u64 = 0x3fa5_5557_242d_68fe;
pub(super) const EXP_C3: u64 = 0x3fc5_5555_5393_9732;
pub(super) const EXP_C2: u64 = 0x3fe0_0000_0000_d008;
pub(super) const EXP_C1: u64 = 0x3fef_ffff_ffff_ff70;
pub(super) const EXP_THR: u64 = 0x4086_1da0_4cba_fe44;
