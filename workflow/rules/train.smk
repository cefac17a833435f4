# Training: one job per model key, whatever the method (simreg.train.regularizers); the
# method's own DAG inputs (similarity targets, a source model) come from its `needs`.
# With training.pack_size > 1, one job per pack of seeds of a model key instead
# (simreg.train.packs): train_pack writes the pack's folder, and train_pack_member links each
# seed's usual files from it. Only one of the two ways is defined, so no rule is ambiguous.


if PACK_SIZE == 1:

    rule train:
        input:
            unpack(train_inputs),
        output:
            model=model_file(MODEL),
            metrics=metrics_file(MODEL),
        log:
            log_file("train", MODEL),
        benchmark:
            benchmark_file("train", log_file("train", MODEL))
        conda:
            "../../envs/simreg.yaml"
        threads: SETTINGS.resources.train_threads
        resources:
            mem_mb=lambda w, attempt: SETTINGS.resources.train_mem_mb * attempt,
            runtime=train_runtime,
            gpu=SETTINGS.resources.gpu,
            slurm_partition=devices.slurm_partition(SETTINGS.resources.gpu),
        params:
            # Checkpoints live outside the outputs, so a failed job keeps them and a rerun resumes.
            checkpoint_dir=checkpoint_dir(MODEL),
            inputs=lambda w, input: named_files(
                "--input", {k: v for k, v in input.items() if k != "task"}
            ),
            settings=train_settings,
            model_keys=lambda w: json.dumps(model_key(w).columns()),
            device=job_device,
            code=command_code("train"),
        shell:
            "simreg train --task-data {input.task} {params.inputs}"
            " --model-out {output.model} --metrics-out {output.metrics}"
            " --checkpoint-dir {params.checkpoint_dir} --settings '{params.settings}'"
            " --keys '{params.model_keys}' --device {params.device} --threads {threads} >> {log} 2>&1"

else:

    rule train_pack:
        input:
            unpack(train_pack_inputs),
        output:
            pack=directory(pack_dir(PACK)),
        log:
            pack_log(PACK),
        benchmark:
            benchmark_file("train_pack", pack_log(PACK))
        conda:
            "../../envs/simreg.yaml"
        threads: SETTINGS.resources.train_threads
        resources:
            # per seed, times the pack's seeds (what training them one after another takes)
            mem_mb=train_pack_resource("train_mem_mb"),
            runtime=train_pack_resource("train_runtime"),
            gpu=SETTINGS.resources.gpu,
            slurm_partition=devices.slurm_partition(SETTINGS.resources.gpu),
        params:
            # Checkpoints live outside the outputs, so a failed job keeps them and a rerun resumes.
            checkpoint_dir=pack_checkpoint_dir(PACK),
            inputs=train_pack_flags,
            model_outs=train_pack_outputs("model"),
            metrics_outs=train_pack_outputs("metrics"),
            settings=train_pack_settings,
            model_keys=lambda w: json.dumps([m.columns() for m in pack(w).members]),
            device=job_device,
            code=command_code("train_pack"),
        shell:
            "simreg train-pack --task-data {input.task} {params.inputs}"
            " --model-out {params.model_outs} --metrics-out {params.metrics_outs}"
            " --checkpoint-dir {params.checkpoint_dir} --settings '{params.settings}'"
            " --keys '{params.model_keys}' --device {params.device} --threads {threads} >> {log} 2>&1"

    # One seed's files from its pack: a hard link (no second copy on disk), or a copy where
    # the two folders are on different file systems.
    rule train_pack_member:
        input:
            pack=packed_model,
        output:
            model=model_file(MODEL),
            metrics=metrics_file(MODEL),
        log:
            log_file("train_pack_member", MODEL),
        localrule: True
        conda:
            "../../envs/simreg.yaml"
        params:
            model=packed_file("model"),
            metrics=packed_file("metrics"),
        shell:
            "(ln -f {params.model} {output.model} || cp {params.model} {output.model}) >> {log} 2>&1"
            " && (ln -f {params.metrics} {output.metrics}"
            " || cp {params.metrics} {output.metrics}) >> {log} 2>&1"
