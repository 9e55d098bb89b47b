#!/usr/bin/env bash
# Makes the pictures of docs/gallery/ from a fresh checkout: installs what is missing, builds,
# runs the lesson (`nabla compare`) and the demo at the sizes below, and copies their pictures.
# About half an hour on 2 cores; extra arguments go to both runs (e.g. --threads 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build
size=(--epochs 3 --train-size 10000 --test-size 2000)
build/apps/nabla compare "${size[@]}" --out out/gallery/compare "$@"
build/apps/nabla demo --epochs 3 --train-size 20000 --out out/gallery/demo "$@"
c=out/gallery/compare d=out/gallery/demo g=docs/gallery
cp "$c"/{pca_2d,ae_vs_pca,linear_ae,interpolation,ae_gaussian_vs_vae,mse_gives_the_average,denoise_toy}.png "$g"/
cp "$c"/{vae_samples_by_d,decoders,cvae_by_class}.png "$g"/
cp "$c"/vae_d10/traverse.png "$g"/traverse_vae_d10.png
cp "$c"/beta_vae_d10/traverse.png "$g"/traverse_beta_vae_d10.png
# the report beside the pictures, its links to the traversals renamed as they were
sed 's#beta_vae_d10/traverse.png#traverse_beta_vae_d10.png#; s#(vae_d10/traverse.png#(traverse_vae_d10.png#' \
    "$c"/report.md > "$g"/compare_report.md
cp "$d"/vae/{reconstruction,samples,loss_curve}.png "$d"/vae2d/{manifold,scatter}.png "$g"/
cp "$d"/vae/interpolation.png "$g"/interpolation_vae.png
# the VQ-VAE's section: one epoch of the MLP form, 16 test images and their reconstructions
build/apps/nabla train --model vqvae --epochs 1 --out out/gallery/vqvae "$@"
build/apps/nabla reconstruct --out out/gallery/vqvae --n 8 --rows 2
cp out/gallery/vqvae/reconstruction.png "$g"/vqvae_reconstruction.png
echo "wrote $g/"
