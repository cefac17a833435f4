rule similarity:
    input:
        rules.dataset.output[0],
    output:
        similarity_file("{dataset}_{color}_n{n}"),
    log:
        "results/logs/similarity/{dataset}_{color}_n{n}.log",
    benchmark:
        "results/benchmarks/similarity/{dataset}_{color}_n{n}.tsv"
    conda:
        "../../envs/simreg.yaml"
    resources:
        mem_mb=SETTINGS.resources.similarity_mem_mb,
        runtime=SETTINGS.resources.similarity_runtime,
    params:
        image_seed=SETTINGS.regularization.image_seed,
        dtype=SETTINGS.similarity.dtype,
        block_size=SETTINGS.similarity.block_size,
        code=command_code("similarity"),
    shell:
        "simreg similarity --dataset {input} --out {output} --n-images {wildcards.n}"
        " --image-seed {params.image_seed} --dtype {params.dtype}"
        " --block-size {params.block_size} >> {log} 2>&1"
